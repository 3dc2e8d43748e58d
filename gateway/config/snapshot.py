"""What ``config.get`` shows: the config file and the config in force, secrets hidden. Pure.

PROTOCOL.md 7.13 / CONTROL-UI.md 4 (the Config panel's read-only view). A secret is any
value under a key whose name ends in ``token`` or contains ``password``, ``secret`` or
``api key`` (``apiKey``, ``api_key``): the same rule as the reference's. Its value becomes
:data:`REDACTED` everywhere the answer shows it -- the parsed document, the effective config
and the raw file text -- unless it is a bare ``${VAR}`` reference, which names a secret but
is not one. ``hash`` is computed over the file as it is on disk (so a later write can be
guarded by it), never over the redacted copy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

import attrs
import json5

from ..errors import ConfigError
from .edit import as_document
from .load import parse
from .model import Config

REDACTED = "__SMART_AGENT_NEO_REDACTED__"
_SENSITIVE = (
    re.compile(r"token$", re.I),
    re.compile(r"password", re.I),
    re.compile(r"secret", re.I),
    re.compile(r"api.?key", re.I),
)
_ENV_REF = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*\}$")
# `key: "value"` in JSON5 text (quoted or bare key, either quote): the fallback for a file
# that does not parse, whose secrets cannot be found by walking a document
_KEY_VALUE = re.compile(
    r"""(?P<q>["']?)(?P<key>[A-Za-z_$][\w$]*)(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)"""  # unclosed: half-saved
)

_STRING = re.compile(r"""^(["'])((?:(?!\1)[^\\\n]|\\.)*)(\1?)$""")


def is_sensitive_key(name: str) -> bool:
    return any(p.search(name) for p in _SENSITIVE)


@attrs.frozen
class Issue:
    path: str
    message: str


@attrs.frozen
class Snapshot:
    path: str
    exists: bool
    raw: str | None
    parsed: object
    valid: bool
    config: dict[str, object]
    hash: str
    issues: list[Issue]
    warnings: list[Issue]


def redact(value: object, secrets: set[str] | None = None, *, under_secret: bool = False) -> object:
    """A copy with every secret replaced by :data:`REDACTED`; the replaced strings are added
    to ``secrets`` (for the raw text)."""
    if isinstance(value, dict):
        return {
            k: redact(v, secrets, under_secret=under_secret or is_sensitive_key(str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secrets, under_secret=under_secret) for v in value]
    if not under_secret or value is None or value == "" or isinstance(value, bool):
        return value
    if isinstance(value, str) and _ENV_REF.match(value):
        return value
    if secrets is not None:
        secrets.add(value if isinstance(value, str) else json.dumps(value))
    return REDACTED


def redact_text(raw: str, secrets: set[str]) -> str:
    """The file text with each secret's literal occurrences replaced (longest first, so a
    secret that contains another is replaced whole), and any quoted value of a secret key
    too (a half-saved file has no document to take the secrets from)."""

    def scrub(match: re.Match[str]) -> str:
        parts = _STRING.match(match.group("value"))
        assert parts is not None  # the same grammar as _KEY_VALUE's value
        quote, inner, close = parts.groups()
        if not is_sensitive_key(match.group("key")) or _ENV_REF.match(inner):
            return match.group(0)
        key = f"{match.group('q')}{match.group('key')}{match.group('q')}{match.group('sep')}"
        return f"{key}{quote}{REDACTED}{close}"

    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            raw = raw.replace(secret, REDACTED)
            # a JSON string spells some characters escaped ("a\"b"): hide that form too
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                raw = raw.replace(escaped, REDACTED)
    return _KEY_VALUE.sub(scrub, raw)


def _issue(line: str) -> Issue:
    path, sep, message = line.partition(": ")
    if not sep or " " in path:
        return Issue("", line)
    return Issue(path, message)


def file_hash(raw: str | None) -> str:
    return hashlib.sha256((raw or "").encode("utf-8")).hexdigest()


def build(path: str, raw: str | None, running: Config, env: Mapping[str, str]) -> Snapshot:
    """``raw`` is the file's text (``None``: no file). ``config`` is the config the gateway
    runs with now (defaults filled in): after an invalid edit that is the last good one."""
    secrets: set[str] = set()
    parsed: object = {}
    issues: list[Issue] = []
    warnings: list[Issue] = []
    if raw is not None:
        try:
            parsed = json5.loads(raw)
        except ValueError:
            parsed = None
        try:
            _, found = parse(raw, env, source=path)
            warnings = [_issue(w) for w in found]
        except ConfigError as exc:
            issues = [_issue(p) for p in exc.problems]
        # secrets from the file as written, substituted or not
        redacted_parsed = redact(parsed, secrets)
    else:
        redacted_parsed = {}
    effective = redact(as_document(running), secrets)
    assert isinstance(effective, dict)
    return Snapshot(
        path=path,
        exists=raw is not None,
        raw=redact_text(raw, secrets) if raw is not None else None,
        parsed=redacted_parsed,
        valid=not issues,
        config=effective,
        hash=file_hash(raw),
        issues=issues,
        warnings=warnings,
    )
