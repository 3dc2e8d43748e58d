"""Provider-neutral types: what the tool-call loop sends a model and what comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from ...errors import GatewayFault
from ...protocol.model import JsonObject

OnDelta = Callable[[str], None]


class ProviderError(GatewayFault):
    """A model call failed; ``str()`` names the provider and the reason (shown to the user)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@attrs.frozen
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@attrs.frozen
class Image:
    """An image the user attached: base64 data and its MIME type."""

    mime_type: str
    data: str

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data}"


@attrs.frozen
class Message:
    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role "tool": which call this answers
    tool_name: str | None = None
    is_error: bool = False
    images: tuple[Image, ...] = ()  # role "user" only


@attrs.frozen
class ToolSpec:
    name: str
    description: str
    parameters: JsonObject  # JSON Schema of the arguments object


@attrs.frozen
class ModelRequest:
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int | None = None


@attrs.frozen
class TokenUsage:
    input: int = 0
    output: int = 0


@attrs.frozen
class ModelReply:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: str = "stop"
    usage: TokenUsage | None = None


def count(value: object) -> int:
    """A token count from a provider's usage block: an int, else 0 (never a bool)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def reported_error(name: str, error: object) -> ProviderError:
    """An error the provider reported inside its stream, with its own message if it has one."""
    message = error.get("message") if isinstance(error, dict) else error
    return ProviderError(f"provider {name} reported an error: {message}")
