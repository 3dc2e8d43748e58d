"""What WebChat text may contain, and which messages mean "stop" (PROTOCOL.md 7.8). Pure."""

from __future__ import annotations

import re
import unicodedata

from ..errors import PeerError

# C0 controls except TAB, LF and CR; DEL; C1 controls
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
STOP_WORDS = frozenset({"/stop", "stop", "esc", "abort", "wait", "exit", "interrupt"})
_TRAILING = ".!。"


class ChatTextError(PeerError, ValueError):
    """Text that cannot be sent; the message is the wire error's."""


def normalize(text: str) -> str:
    """NFC, with control characters other than TAB/LF/CR removed; NUL is refused outright
    (it is never typed, so it is a client bug or an attack, not something to clean up)."""
    if "\x00" in text:
        raise ChatTextError("message must not contain null bytes")
    return _CONTROL.sub("", unicodedata.normalize("NFC", text))


def is_stop_command(text: str) -> bool:
    """``/stop`` or one of the stop words on its own (any case, a trailing "." or "!" ok)."""
    word = text.strip().rstrip(_TRAILING).strip().lower()
    return word in STOP_WORDS
