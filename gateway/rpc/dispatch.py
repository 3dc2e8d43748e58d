"""One request, from validated frame to response frame.

Order (PROTOCOL.md 4.1): role -> scope -> method lookup -> params schema -> handler.
A handler's ``GatewayError`` becomes ``res {ok:false}`` with its ``shape()``; any other
exception becomes ``UNAVAILABLE`` with the error text. Neither tears down the connection.

Two-stage methods (``agent``, PROTOCOL.md 4.2) call :func:`send_interim` with the
``accepted`` payload as soon as the work is started; what the handler returns (or raises)
later becomes the final ``res`` with the same id. Everything else sends exactly one ``res``.
"""

from __future__ import annotations

import logging

from ..auth import ADMIN, scope_allows
from ..errors import Forbidden, GatewayError, InvalidRequest, Unavailable
from ..protocol import validate
from ..protocol.codec import Encoded, dumps, from_wire, to_wire
from ..protocol.frames import ErrorCode, ErrorShape
from .registry import CallContext, Method, methods

log = logging.getLogger("gateway.rpc")


def response_text(
    request_id: str, ok: bool, payload: object = None, error: ErrorShape | None = None
) -> str:
    """The ``res`` frame as text. It always starts ``{"type":"res","id":...,"ok":...``
    (``observe.response_outcome`` relies on that)."""
    parts = ['{"type":"res","id":', dumps(request_id), ',"ok":true' if ok else ',"ok":false']
    if ok or payload is not None:
        parts += [',"payload":', payload.text if isinstance(payload, Encoded) else _encode(payload)]
    if error is not None:
        parts += [',"error":', dumps(to_wire(error))]
    parts.append("}")
    return "".join(parts)


def _encode(payload: object) -> str:
    return dumps(to_wire(payload))


def send_interim(ctx: CallContext, payload: object) -> None:
    """Send the interim ``res {ok:true, payload:{..., status:"accepted"}}`` of a two-stage
    method; the handler's eventual result is the final ``res`` for the same request id."""
    ctx.peer.send_text(response_text(ctx.request_id, True, payload))


def authorize(ctx: CallContext, name: str) -> Method:
    """The method to run, or the ``PeerError`` that refuses it (role, scope, unknown)."""
    peer = ctx.peer
    spec = methods().get(name)
    if peer.role == "node":
        if spec is None or spec.role != "node":
            raise InvalidRequest("unauthorized role: node")
        return spec
    if spec is not None and spec.role == "node":
        raise InvalidRequest(f"unauthorized role: {peer.role}")
    required = spec.scope if spec is not None else ADMIN  # unclassified: default-deny
    if not scope_allows(peer.scopes, required):
        raise Forbidden(
            f"missing scope: {required}",
            details={
                "code": "MISSING_SCOPE",
                "missingScope": required,
                "requiredScopes": [required],
            },
        )
    if spec is None:
        raise InvalidRequest(f"unknown method: {name}")
    return spec


async def call(ctx: CallContext, name: str, params: object) -> str:
    """Run one request and return the serialized ``res`` frame."""
    try:
        spec = authorize(ctx, name)
        if ctx.runtime.draining:
            raise Unavailable(
                "gateway draining for a stop or restart; retry shortly", retry_after_ms=1000
            )
        params = {} if params is None else params
        problem = validate.problem(spec.params.__name__, params)
        if problem is not None:
            raise InvalidRequest(f"invalid {name} params: {problem}")
        result = await spec.handler(ctx, from_wire(spec.params, params))
        return response_text(ctx.request_id, True, result)
    except GatewayError as exc:
        return response_text(ctx.request_id, False, exc.payload, error=exc.shape())
    except Exception as exc:
        log.exception("handler for %s failed", name)
        message = str(exc) or type(exc).__name__
        return response_text(
            ctx.request_id, False, error=ErrorShape(ErrorCode.UNAVAILABLE, message)
        )
