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


@closed
@attrs.frozen
class ConfigWriteParams:
    """``config.set`` / ``config.apply`` (the whole file) and ``config.patch`` (a JSON merge
    patch: ``null`` deletes a key)."""

    raw: str = attrs.field(metadata=schema(min_length=1, description="JSON5 text"))
    base_hash: str | None = attrs.field(
        default=None,
        metadata=schema(
            min_length=1,
            description="config.get's hash; required when the file exists (no lost updates)",
        ),
    )
    session_key: str | None = None
    note: str | None = None
    restart_delay_ms: int | None = attrs.field(default=None, metadata=schema(minimum=0))


@closed
@attrs.frozen
class ConfigWriteResult:
    ok: bool
    path: str
    config: object = attrs.field(metadata=schema(description="the file as written, redacted"))
    hash: str
    reload: str = attrs.field(
        metadata=schema(
            description=(
                "what the running gateway does with the change (gateway.reload.mode): "
                "nothing | ignore | hot | restart"
            )
        )
    )


@closed
@attrs.frozen
class ConfigSchemaResult:
    schema: object = attrs.field(metadata=schema(description="the config file's JSON Schema"))
