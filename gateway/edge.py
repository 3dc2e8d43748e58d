"""Client-supplied text made safe for state that every client shares. Pure.

The JSON decoder (``protocol/codec.loads``) already refuses what cannot be encoded again
(lone surrogates, invalid UTF-8), so a string that passed it can always be sent. What is
left for the edge of a shared structure -- the presence table, log lines -- is what one
client could use against the others' *readers*: terminal control sequences (an ESC in a
display name rewrites an operator's terminal when the CLI prints presence), and size (a
64 KiB display name, copied into every ``hello-ok`` and ``system-presence`` answer).

:func:`clean` removes control characters, replaces any lone surrogate (from a source other
than our decoder: a file, a model provider) and cuts the value to a length; it is applied
where such a value enters shared state, not where it is read.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, and C1 controls: nothing a name, a version or a log line
# needs, and what a terminal obeys (ESC, CSI, BEL, backspace, carriage return ...)
_CONTROLS = dict.fromkeys([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0)])
_CONTROLS_KEEP_NEWLINES = {k: v for k, v in _CONTROLS.items() if k != 0x0A}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

FIELD_CHARS = 256  # presence fields: names, versions, platforms, ids
TEXT_CHARS = 2048  # a presence row's free text
LIST_ITEMS = 32  # roles, scopes, tags


def clean(value: str, limit: int = FIELD_CHARS, *, newlines: bool = False) -> str:
    """``value`` without control characters or lone surrogates, at most ``limit`` chars
    (an ellipsis marks a cut)."""
    if not value.isprintable():
        value = value.translate(_CONTROLS_KEEP_NEWLINES if newlines else _CONTROLS)
        value = _LONE_SURROGATE.sub("\ufffd", value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def clean_optional(value: str | None, limit: int = FIELD_CHARS) -> str | None:
    return None if value is None else clean(value, limit)


def clean_list(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [clean(v) for v in values[:LIST_ITEMS]]
