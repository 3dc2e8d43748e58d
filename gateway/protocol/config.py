"""``config.get`` result (PROTOCOL.md 7.13)."""

from __future__ import annotations

import attrs

from .model import closed, schema


@closed
@attrs.frozen
class ConfigIssue:
    path: str = attrs.field(metadata=schema(description="dotted key path; empty: the file"))
    message: str


@closed
@attrs.frozen
class ConfigGetResult:
    path: str
    exists: bool
    raw: str | None = attrs.field(metadata=schema(description="the file's text, secrets redacted"))
    parsed: object = attrs.field(metadata=schema(description="the file as JSON, secrets redacted"))
    valid: bool
    config: object = attrs.field(
        metadata=schema(description="the configuration running now, defaults included, redacted")
    )
    hash: str = attrs.field(metadata=schema(description="SHA-256 of the file's bytes"))
    issues: list[ConfigIssue]
    warnings: list[ConfigIssue]
    legacy_issues: list[ConfigIssue]
