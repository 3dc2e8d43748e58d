"""What ``config.get`` shows (PROTOCOL.md 7.13, CONTROL-UI.md 5): the file as it is on disk,
whether it validates, the configuration the gateway runs -- with every secret redacted.

Pure: the caller reads the file and passes its text. ``hash`` is the SHA-256 of the file's
bytes (of the empty string when there is no file), a revision an editor can send back as
``baseHash``. Secrets are the values of keys named like ``token``, ``botToken``,
``password``, ``apiKey``, ``secret``, ``appSecret`` (any key ending in token, password,
secret or apikey); a ``${VAR}`` reference is not a secret and stays. In ``raw`` each secret
value found in the parsed file is replaced where it occurs in the text; ``raw`` is ``None``
when that cannot be done safely (a file that does not parse, a secret spelled with escapes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import json5

from ..errors import ConfigError
from ..protocol.config import ConfigGetResult, ConfigIssue
from .edit import as_document
from .load import parse
from .model import Config

REDACTED = "__REDACTED__"
_SECRET_SUFFIXES = ("token", "password", "secret", "apikey")


def is_secret_key(key: str) -> bool:
    return key.lower().endswith(_SECRET_SUFFIXES)


def redact(value: object, found: set[str] | None = None) -> object:
    """A copy of ``value`` with secret values replaced by :data:`REDACTED`; the replaced
    strings are added to ``found``."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            if is_secret_key(str(key)) and isinstance(item, str) and item:
                if item.startswith("${") and item.endswith("}"):
                    out[key] = item  # a reference to the environment, not the secret
                    continue
                if found is not None:
                    found.add(item)
                out[key] = REDACTED
            else:
                out[key] = redact(item, found)
        return out
    if isinstance(value, list):
        return [redact(item, found) for item in value]
    return value


def redacted_text(text: str, secrets: set[str]) -> str | None:
    """``text`` with each secret value replaced (quoted, then anywhere else it occurs, a
    comment say); ``None`` unless the result parses and holds no secret any more (an escape
    sequence can spell a secret differently in the text than in its value)."""
    for secret in sorted(secrets, key=len, reverse=True):
        for quote in ('"', "'"):
            text = text.replace(f"{quote}{secret}{quote}", f"{quote}{REDACTED}{quote}")
        text = text.replace(secret, REDACTED)
    left: set[str] = set()
    try:
        redact(json5.loads(text), left)
    except ValueError:
        return None
    left.discard(REDACTED)
    return None if left else text


def _issue(problem: str) -> ConfigIssue:
    """``"gateway.port: expected ..."`` -> ``{path: "gateway.port", message: "expected ..."}``."""
    path, sep, message = problem.partition(": ")
    if not sep or " " in path:
        return ConfigIssue(path="", message=problem)
    return ConfigIssue(path=path, message=message)


def snapshot(
    path: str, text: str | None, env: Mapping[str, str], running: Config
) -> ConfigGetResult:
    """The ``config.get`` answer for the file at ``path`` whose text is ``text`` (``None``:
    absent); ``running`` is the configuration the gateway runs now."""
    digest = hashlib.sha256((text or "").encode()).hexdigest()
    issues: list[ConfigIssue] = []
    warnings: list[ConfigIssue] = []
    parsed: object = None
    raw: str | None = None
    if text is not None:
        secrets: set[str] = set()
        try:
            parsed = redact(json5.loads(text), secrets)
            raw = redacted_text(text, secrets)
        except ValueError:
            parsed = None  # and raw stays None: which parts are secrets cannot be known
        try:
            _, notes = parse(text, env, source=path)
            warnings = [_issue(note) for note in notes]
        except ConfigError as exc:
            issues = [_issue(problem) for problem in exc.problems]
    return ConfigGetResult(
        path=path,
        exists=text is not None,
        raw=raw,
        parsed=parsed,
        valid=not issues,
        config=redact(as_document(running)),
        hash=digest,
        issues=issues,
        warnings=warnings,
        legacy_issues=[],
    )
