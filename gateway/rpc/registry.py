"""The method registry: the one list of what the control plane answers.

A handler registers with ``@method(name, params=..., result=..., scope=...)``. From this
table come ``hello-ok.features.methods``, the ``x-methods`` index and param/result schemas
in ``schemas/``, the scope checks, and a test that calls every advertised method over a live
connection -- so nothing can be written and left unwired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

from ..auth import READ
from ..events import Peer
from ..protocol.schema import MethodEntry
from ..runtime import Runtime

P = TypeVar("P")


@attrs.frozen
class CallContext:
    runtime: Runtime
    peer: Peer
    request_id: str


Handler = Callable[[CallContext, Any], Awaitable[object]]
# A synchronous answer, tried first in the connection's reader (no task): LATER when the
# request needs the asynchronous handler after all (a stale cache, a probe).
NowHandler = Callable[[CallContext, Any], object]
LATER = object()


@attrs.frozen
class Method:
    name: str
    params: type
    result: type | None
    scope: str
    role: str
    handler: Handler
    now: NowHandler | None = None

    def entry(self) -> MethodEntry:
        return MethodEntry(self.name, self.params, self.result, self.scope, self.role)


REGISTRY: dict[str, Method] = {}


def method(
    name: str,
    *,
    params: type[P],
    result: type | None,
    scope: str = READ,
    role: str = "operator",
) -> Callable[
    [Callable[[CallContext, P], Awaitable[object]]], Callable[[CallContext, P], Awaitable[object]]
]:
    def register(
        handler: Callable[[CallContext, P], Awaitable[object]],
    ) -> Callable[[CallContext, P], Awaitable[object]]:
        if name in REGISTRY:
            raise RuntimeError(f"method {name!r} registered twice")
        REGISTRY[name] = Method(name, params, result, scope, role, handler)
        return handler

    return register


N = TypeVar("N", bound=NowHandler)


def answers_now(name: str) -> Callable[[N], N]:
    """Register a synchronous way to answer ``name`` (already registered with
    :func:`method`) that never waits: the session runs it inline in the connection's
    reader, without a task, a cancel scope or a scheduler round trip (BENCHMARKS.md,
    connection layer). It returns the result, or :data:`LATER` to leave the request to the
    method's asynchronous handler; errors map as the handler's do (``rpc/dispatch.py``)."""

    def register(now: N) -> N:
        REGISTRY[name] = attrs.evolve(REGISTRY[name], now=now)
        return now

    return register


_loaded = False


def methods() -> dict[str, Method]:
    """All registered methods; importing the handler modules registers them.

    Called on every request: after the first call it is a global lookup, not four imports.
    """
    global _loaded
    if not _loaded:
        from . import (  # noqa: F401  (registration side effect)
            agent,
            channels,
            chat,
            config,
            devices,
            logs,
            node_pairing,
            nodes,
            restart,
            send,
            system,
            voicewake,
        )

        _loaded = True
    return REGISTRY
