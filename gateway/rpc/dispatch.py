"""One authorized request, from its params to its response frame.

The connection machine (``protocol/connection.py``) has already checked role -> scope ->
method lookup -> draining (PROTOCOL.md 4.1); here the params are checked against the
method's schema and the handler runs (:func:`call`) -- or, for a method that can answer at
once (``registry.answers_now``), its synchronous answer, in the reader (:func:`call_now`).
A handler's ``GatewayError`` becomes ``res {ok:false}`` with its ``shape()``; any other
exception becomes ``UNAVAILABLE`` with the error text. Neither tears down the connection.

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
from .registry import LATER, CallContext, Method

log = logging.getLogger("gateway.rpc")


def send_interim(ctx: CallContext, payload: object) -> None:
    """Send the interim ``res {ok:true, payload:{..., status:"accepted"}}`` of a two-stage
    method; the handler's eventual result is the final ``res`` for the same request id."""
    ctx.peer.send_text(response_text(ctx.request_id, True, payload))


async def call(ctx: CallContext, spec: Method, params: object) -> str:
    """Run one authorized request and return the serialized ``res`` frame."""
    try:
        result = await spec.handler(ctx, _params(spec, params))
        return response_text(ctx.request_id, True, result)
    except Exception as exc:
        return _failed(ctx, spec.name, exc)


def call_now(ctx: CallContext, spec: Method, params: object) -> str | None:
    """The ``res`` frame from the method's synchronous answer (``registry.answers_now``);
    ``None`` when it says the request needs the asynchronous handler (:func:`call`)."""
    assert spec.now is not None
    try:
        result = spec.now(ctx, _params(spec, params))
        if result is LATER:
            return None
        return response_text(ctx.request_id, True, result)
    except Exception as exc:
        return _failed(ctx, spec.name, exc)


def _params(spec: Method, params: object) -> object:
    params = {} if params is None else params
    problem = validate.problem(spec.params.__name__, params)
    if problem is not None:
        raise InvalidRequest(f"invalid {spec.name} params: {problem}")
    return from_wire(spec.params, params)


def _failed(ctx: CallContext, name: str, exc: Exception) -> str:
    """A handler's ``GatewayError`` as its own shape; anything else as ``UNAVAILABLE``."""
    if isinstance(exc, GatewayError):
        return response_text(ctx.request_id, False, exc.payload, error=exc.shape())
    log.exception("handler for %s failed", name, exc_info=exc)
    message = str(exc) or type(exc).__name__
    return response_text(ctx.request_id, False, error=ErrorShape(ErrorCode.UNAVAILABLE, message))
