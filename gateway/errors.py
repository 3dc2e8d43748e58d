"""The gateway's one exception hierarchy.

    GatewayError                      root: every expected failure the gateway reports
    ├── PeerError                     the peer did something wrong: INVALID_REQUEST, HTTP 400,
    │   │                             close 1008, not retryable
    │   ├── Unauthorized              a missing or wrong secret: HTTP 401
    │   ├── RateLimited               too many failed attempts: HTTP 429, retryable
    │   ├── Forbidden                 authenticated, lacks the scope: FORBIDDEN, HTTP 403
    │   ├── NotPaired                 device/node not paired: NOT_PAIRED, HTTP 403
    │   ├── NotFound                  no such thing: HTTP 404
    │   │   └── AgentResultNotFound   AGENT_RESULT_NOT_FOUND
    │   ├── PayloadTooLarge           HTTP 413, close 1009
    │   ├── ProtocolMismatch          close 1002
    │   ├── HttpError                 an HTTP API's own 4xx (status, OpenAI error type)
    │   ├── SessionKeyError           an unusable session key or agent id
    │   ├── ToolError                 (agent/tools/registry.py) bad tool arguments, no such file
    │   ├── SelectError               a model/agent/session the request cannot have
    │   ├── FormatError               an OpenAI-format request field is wrong
    │   ├── HookRefused               (hooks.py) a /hooks/* body refused: 400 {ok:false, error}
    │   ├── JsonRejected              (protocol/codec.py) inbound JSON we refuse; a ValueError
    │   ├── ChatTextError             (agent/chattext.py) text that cannot be sent; a ValueError
    │   └── AttachmentError           (agent/attachments.py) an unusable attachment; a ValueError
    └── GatewayFault                  we (or a dependency) failed: UNAVAILABLE, HTTP 500,
        │                             close 1011
        ├── Unavailable               starting, draining, busy: HTTP 503, close 1013, retryable
        │   └── NotLinked             the messaging account cannot send: NOT_LINKED
        ├── AgentTimeout              AGENT_TIMEOUT, HTTP 504
        ├── ConfigError               invalid configuration (exit 78, EX_CONFIG)
        ├── ModelConfigError          the agents/models config cannot serve a run
        ├── StartupError              refused to start: auth, bind, mode guard (exit 1)
        │   ├── PortInUseError        the port is taken (exit 75, EX_TEMPFAIL)
        │   │   └── NotOursError      (force.py) ... by a process that is not a gateway
        │   └── LockHeldError         (lock.py) another gateway holds the config lock
        ├── ProviderError             (agent/providers/base.py) a model call failed
        ├── StepLimitError            a run used up its tool steps
        ├── EmptyReplyError           the model answered nothing
        ├── AssetsMissing             (controlui/assets.py) no Control UI files to serve
        ├── ChannelError              a messaging channel failed: HTTP 502
        │   ├── ChannelFatal          (channels/slot.py) retrying will not fix it: "failed"
        │   ├── TokenFileError        (channels/accounts.py) a tokenFile cannot be read
        │   ├── DatabaseError         (channels/db.py) the channel database cannot be used
        │   ├── BotApiError           (channels/telegram/api.py) Telegram answered ok:false
        │   ├── BotNetworkError       (channels/telegram/api.py) no usable answer, retryable
        │   ├── GraphError            (channels/whatsapp/api.py) the Graph API answered an error
        │   ├── GraphNetworkError     (channels/whatsapp/api.py) no usable answer, retryable
        │   ├── SendError             (channels/sending.py) a reply part not sent
        │   └── OutboxFull            (channels/outbox/store.py) too many unsent: HTTP 503
        └── ServiceError              (service/errors.py) systemd/launchd said no
            └── ManagerUnavailableError   no service manager to ask (exit 69)

Outside the tree on purpose: signals that end a loop rather than report a failure and never
leave their module -- ``server/session.Disconnected`` (the client went away) and
``protocol/fastcheck.Unsupported`` (a frame the fast path leaves to the full validator) --
and the client library's own ``GatewayClientError`` family (``clients/``, a separate
package that does not import the gateway).

Each class carries what every surface needs -- the wire ``code``, ``http_status``,
``close_code`` and ``retryable`` -- so an RPC ``res``, an HTTP error body and a WebSocket
close are all written from the same exception (:meth:`GatewayError.shape`). An instance
may narrow them (``details``, ``retryable``, ``retry_after_ms``; ``payload`` for the final
``res`` of a failed run; ``headers``/``body`` for an HTTP answer; ``close_reason`` when a
WebSocket close should say less than the message). ``RpcError`` is the one
spelling for a code chosen at run time.

Errors carry what the user needs to act: a key path, a value, a host and port. The CLI
prints ``str(error)`` as one line and exits with ``error.exit_code``; no traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .protocol.codes import CloseCode, ErrorCode

if TYPE_CHECKING:
    from .protocol.frames import ErrorShape

EX_OK = 0
EX_FAILURE = 1
EX_TEMPFAIL = 75
EX_CONFIG = 78

Headers = Sequence[tuple[bytes, bytes]]


class GatewayError(Exception):
    """Root of every expected gateway failure."""

    code: str = ErrorCode.UNAVAILABLE
    http_status: int = 500
    close_code: int = CloseCode.INTERNAL_ERROR
    retryable: bool | None = None
    kind: str = "api_error"  # the OpenAI-style error "type" of an HTTP error body
    exit_code: int = EX_FAILURE

    def __init__(
        self,
        message: str = "",
        *,
        details: object | None = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        payload: object | None = None,
        headers: Headers = (),
        body: object | None = None,
        close_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message or type(self).__name__
        self.details = details
        if retryable is not None:
            self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        # a failed res may carry a payload too (the final `agent` res: {runId, status, summary})
        self.payload = payload
        self.headers = list(headers)
        self.body = body  # an HTTP body other than {"error": {message, type}}
        self.close_reason = message if close_reason is None else close_reason

    def shape(self) -> ErrorShape:
        """The wire ``ErrorShape`` of this error."""
        from .protocol.frames import ErrorShape  # frames -> codec -> this module: not at the top

        return ErrorShape(
            self.code, self.message, self.details, self.retryable, self.retry_after_ms
        )


# -- the peer did something wrong -----------------------------------------------------------


class PeerError(GatewayError):
    code = ErrorCode.INVALID_REQUEST
    http_status = 400
    close_code = CloseCode.POLICY
    retryable: bool | None = None
    kind = "invalid_request_error"


InvalidRequest = PeerError  # the name handlers raise: INVALID_REQUEST


class Unauthorized(PeerError):
    http_status = 401
    kind = "unauthorized"


class RateLimited(PeerError):
    http_status = 429
    retryable: bool | None = True
    kind = "rate_limited"


class Forbidden(PeerError):
    code = ErrorCode.FORBIDDEN
    http_status = 403
    kind = "forbidden"


class NotPaired(PeerError):
    code = ErrorCode.NOT_PAIRED
    http_status = 403
    kind = "forbidden"


class NotFound(PeerError):
    http_status = 404
    kind = "not_found"


class AgentResultNotFound(NotFound):
    code = ErrorCode.AGENT_RESULT_NOT_FOUND


class PayloadTooLarge(PeerError):
    http_status = 413
    close_code = CloseCode.TOO_BIG


class ProtocolMismatch(PeerError):
    close_code = CloseCode.PROTOCOL_MISMATCH


class HttpError(PeerError):
    """An HTTP API's own refusal: its status, OpenAI-style error type and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        headers: Headers = (),
        body: object | None = None,
    ) -> None:
        super().__init__(message, headers=headers, body=body)
        self.http_status = status
        self.kind = kind


class SessionKeyError(PeerError):
    """A session key or agent id that cannot be used; the message says why."""


class SelectError(PeerError):
    """The request names a model, agent or session that does not exist or is not allowed."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.http_status = status


class FormatError(PeerError):
    """An OpenAI-format request field is wrong; the message names it (``messages[2].content``)."""


# -- we (or a dependency) failed ------------------------------------------------------------


class GatewayFault(GatewayError):
    code = ErrorCode.UNAVAILABLE
    http_status = 500
    close_code = CloseCode.INTERNAL_ERROR


class Unavailable(GatewayFault):
    """Starting, draining or busy: try again later."""

    http_status = 503
    close_code = CloseCode.TRY_AGAIN_LATER
    retryable: bool | None = True


class NotLinked(Unavailable):
    """A channel account that is not linked (no credentials, token rejected): nothing is
    queued for it (CHANNELS.md 4.4)."""

    code = ErrorCode.NOT_LINKED
    retryable: bool | None = False


class AgentTimeout(GatewayFault):
    code = ErrorCode.AGENT_TIMEOUT
    http_status = 504


class ConfigError(GatewayFault):
    """Configuration is invalid; ``problems`` holds one line per bad key path."""

    exit_code = EX_CONFIG

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"Invalid config at {source}: " if source else "Invalid config: "
        super().__init__(where + "; ".join(problems))


class ModelConfigError(GatewayFault):
    """The agents/models config cannot be used as it is; the message names the key."""


class StartupError(GatewayFault):
    """The gateway refused to start (auth, bind, mode guard, lock)."""


class PortInUseError(StartupError):
    exit_code = EX_TEMPFAIL


class ChannelError(GatewayFault):
    """A messaging channel (or the service behind it) failed; each channel module has its
    own subclasses. Their messages are already masked (no bot token in them)."""

    http_status = 502


class StepLimitError(GatewayFault):
    """A run used all of ``agents.defaults.maxToolSteps``."""


class EmptyReplyError(GatewayFault):
    """The model returned neither text nor a tool call."""


_BY_CODE: dict[str, type[GatewayError]] = {
    ErrorCode.INVALID_REQUEST: PeerError,
    ErrorCode.FORBIDDEN: Forbidden,
    ErrorCode.NOT_PAIRED: NotPaired,
    ErrorCode.AGENT_RESULT_NOT_FOUND: AgentResultNotFound,
    ErrorCode.APPROVAL_NOT_FOUND: NotFound,
    ErrorCode.NOT_LINKED: NotLinked,
    ErrorCode.AGENT_TIMEOUT: AgentTimeout,
    ErrorCode.UNAVAILABLE: GatewayFault,
}


def classify(code: str) -> type[GatewayError]:
    """The class of the tree that stands for a wire error code."""
    return _BY_CODE.get(code, GatewayFault)


class RpcError(GatewayError):
    """An error whose wire code is chosen at run time (e.g. passed through from elsewhere);
    its HTTP status and close code are those of the class in the tree for that code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: object | None = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        payload: object | None = None,
    ) -> None:
        like = classify(code)
        self.code = code
        self.http_status = like.http_status
        self.close_code = like.close_code
        self.kind = like.kind
        self.retryable = like.retryable
        super().__init__(
            message,
            details=details,
            retryable=retryable,
            retry_after_ms=retry_after_ms,
            payload=payload,
        )
