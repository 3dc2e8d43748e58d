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


@attrs.frozen
class Method:
    name: str
    params: type
    result: type | None
    scope: str
    role: str
    handler: Handler

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
            devices,
            logs,
            node_pairing,
            nodes,
            restart,
            send,
            system,
        )

        _loaded = True
    return REGISTRY
