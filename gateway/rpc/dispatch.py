"""One authorized request, from its params to its response frame.

The connection machine (``protocol/connection.py``) has already checked role -> scope ->
method lookup -> draining (PROTOCOL.md 4.1); here the params are checked against the
method's schema and the handler runs. A handler's ``GatewayError`` becomes
``res {ok:false}`` with its ``shape()``; any other exception becomes ``UNAVAILABLE`` with the
error text. Neither tears down the connection.

Two-stage methods (``agent``, PROTOCOL.md 4.2) call :func:`send_interim` with the
``accepted`` payload as soon as the work is started; what the handler returns (or raises)
later becomes the final ``res`` with the same id. Everything else sends exactly one ``res``.
"""

from __future__ import annotations

import logging

from ..errors import GatewayError, InvalidRequest
from ..protocol import validate
from ..protocol.codec import from_wire
from ..protocol.frames import ErrorCode, ErrorShape, response_text
from .registry import CallContext, Method

log = logging.getLogger("gateway.rpc")


def send_interim(ctx: CallContext, payload: object) -> None:
    """Send the interim ``res {ok:true, payload:{..., status:"accepted"}}`` of a two-stage
    method; the handler's eventual result is the final ``res`` for the same request id."""
    ctx.peer.send_text(response_text(ctx.request_id, True, payload))


async def call(ctx: CallContext, spec: Method, params: object) -> str:
    """Run one authorized request and return the serialized ``res`` frame."""
    name = spec.name
    try:
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
