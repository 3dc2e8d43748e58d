"""Wire types of ``config.get`` (PROTOCOL.md 7.13; CONTROL-UI.md 4: the Config panel)."""

from __future__ import annotations

import attrs

from .model import JsonObject, closed


@attrs.frozen
class ConfigGetParams:
    """Open: newer clients may send more (nothing is read yet)."""


@closed
@attrs.frozen
class ConfigIssue:
    """One problem with the file: ``path`` is the key path (``""`` for the whole file)."""

    path: str
    message: str


@closed
@attrs.frozen
class ConfigGetResult:
    """The config file and the config in force, every secret replaced by
    ``__SMART_AGENT_NEO_REDACTED__``. ``raw`` is the file's text (``null``: no file);
    ``parsed`` the file as a document (``null``: a syntax error); ``config`` what the
    gateway runs with now, defaults filled in (after an invalid edit: the last good
    config); ``hash`` the SHA-256 of the file on disk, a revision to guard a later write."""

    path: str
    exists: bool
    raw: str | None
    parsed: JsonObject | None
    valid: bool
    config: JsonObject
    hash: str
    issues: list[ConfigIssue]
    warnings: list[ConfigIssue]
    legacy_issues: list[ConfigIssue]
