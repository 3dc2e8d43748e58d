"""The gateway's one exception hierarchy.

    GatewayError                      root: every expected failure the gateway reports
    ├── ConfigError                   invalid configuration (exit 78, EX_CONFIG)
    ├── StartupError                  refused to start: auth, bind, mode guard (exit 1)
    │   └── PortInUseError            the port is taken (exit 75, EX_TEMPFAIL)
    └── RpcError                      a request failed; carries its wire ErrorShape code

Errors carry what the user needs to act: a key path, a value, a host and port. The CLI
prints ``str(error)`` as one line and exits with ``error.exit_code``; no traceback.
"""

from __future__ import annotations

EX_OK = 0
EX_FAILURE = 1
EX_TEMPFAIL = 75
EX_CONFIG = 78


class GatewayError(Exception):
    """Root of every expected gateway failure."""

    exit_code: int = EX_FAILURE


class ConfigError(GatewayError):
    """Configuration is invalid; ``problems`` holds one line per bad key path."""

    exit_code = EX_CONFIG

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"Invalid config at {source}: " if source else "Invalid config: "
        super().__init__(where + "; ".join(problems))


class StartupError(GatewayError):
    """The gateway refused to start (auth, bind, mode guard, lock)."""


class PortInUseError(StartupError):
    exit_code = EX_TEMPFAIL


class RpcError(GatewayError):
    """A request failed; becomes ``res {ok:false, error}`` with this wire code."""

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
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        # a failed res may carry a payload too (the final `agent` res: {runId, status, summary})
        self.payload = payload
