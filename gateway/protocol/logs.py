"""Wire types of ``logs.tail`` (PROTOCOL.md 7.9)."""

from __future__ import annotations

import attrs

from .model import closed, schema

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
DEFAULT_MAX_BYTES = 250_000
MAX_MAX_BYTES = 1_000_000


@closed
@attrs.frozen
class LogsTailParams:
    cursor: int | None = attrs.field(
        default=None,
        metadata=schema(minimum=0, description="byte offset returned by the previous call"),
    )
    limit: int | None = attrs.field(
        default=None, metadata=schema(minimum=1, maximum=MAX_LIMIT, description="default 500")
    )
    max_bytes: int | None = attrs.field(
        default=None,
        metadata=schema(minimum=1, maximum=MAX_MAX_BYTES, description="default 250000"),
    )


@closed
@attrs.frozen
class LogsTailResult:
    file: str = attrs.field(metadata=schema(description="the log file read (absolute path)"))
    cursor: int = attrs.field(
        metadata=schema(minimum=0, description="pass back as params.cursor to continue")
    )
    size: int = attrs.field(metadata=schema(minimum=0))
    lines: list[str] = attrs.field(metadata=schema(description="raw JSON lines, oldest first"))
    truncated: bool = attrs.field(
        metadata=schema(description="older lines were skipped (maxBytes or limit)")
    )
    reset: bool = attrs.field(
        metadata=schema(description="the file was rotated or the cursor fell behind")
    )
