"""Secret redaction: the one function every log sink's lines pass through. Pure.

What is masked (OPERATIONS.md H.3, FAILURE-MODES.md item 22):

* **known secrets** -- the gateway's token and password and every config value whose key
  names a secret (``token``, ``password``, ``secret``, ``apiKey``, ...), wherever they appear
  in a message or a field, verbatim;
* **secret-named fields** of structured data -- ``auth`` blocks of connect frames (presented
  secrets, right or wrong), ``Authorization`` / ``Cookie`` headers, ``token``, ``password``,
  ``apiKey``, ...;
* **secret-shaped text** -- ``Bearer <x>``, ``token=<x>`` / ``"password": "<x>"`` / ``--token
  <x>`` (this also covers a presented secret that a validator quoted back), private-key
  blocks, and the well-known API-key shapes (``sk-...``, ``ghp_...``, ``xoxb-...``, ...).

A masked value keeps its first and last four characters only when it is long (>= 32), so
two API keys can be told apart; anything shorter becomes ``***``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import cast

import attrs

MASK = "***"
MIN_LITERAL = 4  # shorter "secrets" would mask ordinary words; they are weak anyway
HINT_MIN = 32

# Keys whose values are secrets, compared lower-case without "_" and "-".
_SECRET_KEYS = (
    "token",
    "password",
    "passwd",
    "passphrase",
    "secret",
    "apikey",
    "authorization",
    "proxyauthorization",
    "cookie",
    "setcookie",
    "privatekey",
    "credential",
    "credentials",
)
# Blocks whose every leaf is a secret (a connect frame's ``auth``).
_SECRET_BLOCKS = frozenset({"auth"})

_NAME = r"[\w.-]*(?:token|password|passwd|secret|api[_-]?key)"
_PATTERNS: tuple[tuple[re.Pattern[str], int], ...] = (
    # -----BEGIN ... PRIVATE KEY----- ... -----END ... PRIVATE KEY-----
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"), 0),
    # Authorization: Bearer x / Basic x (the scheme stays readable)
    (re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]+)"), 1),
    # token=x, "password": "x", auth.token: 'x' (a validator quoting a presented secret back)
    (re.compile(rf"(?i)(?:{_NAME})[\"']?\s*[:=]\s*[\"']?([^\s\"',;&}}\]]+)"), 1),
    # --token x, --api-key x (a command line in a message); "token mismatch" is prose, not this
    (re.compile(r"(?i)--[\w-]*(?:token|password|secret|api-?key)\s+([^\s\"']+)"), 1),
    # vendor key shapes
    (re.compile(r"\b(sk-[A-Za-z0-9_-]{16,})"), 1),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), 1),
    (re.compile(r"\b(xox[abprs]-[A-Za-z0-9-]{10,})"), 1),
    (re.compile(r"\b(AIza[0-9A-Za-z_-]{30,})"), 1),
    (re.compile(r"\b(AKIA[0-9A-Z]{16})\b"), 1),
    (re.compile(r"\b(\d{8,10}:[A-Za-z0-9_-]{35})\b"), 1),  # Telegram bot token
    # a Bot API URL carries the token whatever its shape: .../bot<token>/<method>
    (re.compile(r"/bot([^/\s\"']{4,})/"), 1),
    (re.compile(r"\b(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"), 1),  # JWT
)


# Secrets that are not in the config file (a bot token read from a tokenFile or the
# environment): channel code registers them here, and every pipeline picks them up.
_runtime_secrets: set[str] = set()
_runtime_generation = 0


def add_secret(value: str) -> None:
    """Mask ``value`` in every log line from now on (process-wide)."""
    global _runtime_generation
    if len(value) >= MIN_LITERAL and value not in _runtime_secrets:
        _runtime_secrets.add(value)
        _runtime_generation += 1


def runtime_secrets() -> tuple[int, frozenset[str]]:
    return _runtime_generation, frozenset(_runtime_secrets)


def mask(value: str) -> str:
    if len(value) >= HINT_MIN:
        return f"{value[:4]}…{value[-4:]}"
    return MASK


def is_secret_key(key: str) -> bool:
    norm = key.lower().replace("_", "").replace("-", "")
    return norm.endswith(_SECRET_KEYS)


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "g": 0, "u": 0}


def compile_pattern(spec: str) -> tuple[re.Pattern[str], int]:
    """``logging.redactPatterns`` entry -> (pattern, group to mask). ``"/re/flags"`` takes
    JavaScript-style flags (``g`` is implied, ``i``/``m``/``s`` map to Python's); a bare
    pattern is case-insensitive. Raises ValueError naming the problem."""
    body, flags = spec, int(re.IGNORECASE)
    if len(spec) > 2 and spec.startswith("/") and spec.rfind("/") > 0:
        cut = spec.rfind("/")
        body, letters = spec[1:cut], spec[cut + 1 :]
        unknown = [c for c in letters if c not in _FLAGS]
        if unknown:
            raise ValueError(f"unknown flag {unknown[0]!r}")
        flags = 0
        for letter in letters:
            flags |= _FLAGS[letter]
    try:
        pattern = re.compile(body, flags)
    except re.error as exc:
        raise ValueError(str(exc)) from None
    return pattern, 1 if pattern.groups else 0


class Redactor:
    """Masks secrets in text and in structured values. Immutable once built."""

    def __init__(
        self, secrets: Iterable[str] = (), patterns: Iterable[tuple[re.Pattern[str], int]] = ()
    ) -> None:
        literals = {s for s in secrets if len(s) >= MIN_LITERAL}
        # longest first, so a secret that contains another is masked whole
        self._literals = sorted(literals, key=len, reverse=True)
        self._patterns = _PATTERNS + tuple(patterns)

    def text(self, text: str) -> str:
        for secret in self._literals:
            if secret in text:
                text = text.replace(secret, mask(secret))
        for pattern, group in self._patterns:
            text = pattern.sub(functools.partial(_mask_group, group=group), text)
        return text

    def value(self, value: object) -> object:
        """The redacted copy of ``value``: strings, and dicts/lists/tuples of them."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            out: dict[str, object] = {}
            for key, item in value.items():
                name = str(key)
                if name.lower() in _SECRET_BLOCKS:
                    out[name] = _mask_leaves(item)
                elif is_secret_key(name) and item is not None and not isinstance(item, bool):
                    out[name] = _mask_leaves(item)
                else:
                    out[name] = self.value(item)
            return out
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


def _mask_group(match: re.Match[str], group: int) -> str:
    whole = match.group(0)
    if group == 0:
        return MASK
    start, end = match.span(group)
    offset = match.start(0)
    secret = match.group(group)
    if secret == MASK or secret.startswith(MASK):
        return whole  # already masked
    return whole[: start - offset] + mask(secret) + whole[end - offset :]


def _mask_leaves(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _mask_leaves(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_leaves(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return mask(str(value))


def config_secrets(value: object) -> Iterator[str]:
    """Every string under a secret-named key of a config value (attrs classes, dicts, lists)."""
    if attrs.has(type(value)):
        for field in attrs.fields(cast("type[attrs.AttrsInstance]", type(value))):
            item = getattr(value, field.name)
            if isinstance(item, str) and is_secret_key(field.name):
                yield item
            else:
                yield from config_secrets(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, str) and is_secret_key(str(key)):
                yield item
            else:
                yield from config_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from config_secrets(item)
