"""Tools the model can call: the registry, the allow/deny policy, and the built-in tools.

Importing this package registers the built-in tools (``builtin.py``).
"""

from __future__ import annotations

from . import builtin  # noqa: F401  (registration side effect)
from .registry import (
    HTTP_DENY,
    TOOLS,
    Tool,
    ToolContext,
    ToolError,
    allowed,
    http_allowed,
    invoke,
    register,
    specs_for,
)

__all__ = [
    "HTTP_DENY",
    "TOOLS",
    "Tool",
    "ToolContext",
    "ToolError",
    "allowed",
    "http_allowed",
    "invoke",
    "register",
    "specs_for",
]
