"""Voice wake words: one global list owned by the gateway (PROTOCOL.md 7.14, 8).

Any operator with ``operator.write`` may replace the list (``voicewake.set``); it is kept in
``<state>/settings/voicewake.json`` (``{triggers, updatedAtMs}``, 0600, atomic) and every
connection hears ``voicewake.changed {triggers}``; a node also gets the current list as a
targeted ``voicewake.changed`` (no ``seq``) when it connects. Normalizing is pure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import attrs

from .errors import InvalidRequest
from .events import Hub, Peer
from .protocol import events as ev
from .protocol.voicewake import MAX_TRIGGER_CHARS, MAX_TRIGGERS, VoiceWakeTriggers
from .statefile import StateFile

log = logging.getLogger("gateway.voicewake")

# [choice] the product's own name first, as the reference puts its own
DEFAULT_TRIGGERS = ("neo", "claude", "computer")


def normalize(triggers: list[str]) -> list[str]:
    """Trimmed, blanks dropped, duplicates (ignoring case) merged in order; none left: the
    defaults. Too many or too long is refused, naming the entry (``INVALID_REQUEST``)."""
    kept: dict[str, str] = {}
    for index, raw in enumerate(triggers):
        word = raw.strip()
        if not word:
            continue
        if len(word) > MAX_TRIGGER_CHARS:
            raise InvalidRequest(
                f"invalid voicewake.set params: triggers.{index}: longer than "
                f"{MAX_TRIGGER_CHARS} characters"
            )
        kept.setdefault(word.casefold(), word)
    if len(kept) > MAX_TRIGGERS:
        raise InvalidRequest(
            f"invalid voicewake.set params: triggers: {len(kept)} wake words, at most "
            f"{MAX_TRIGGERS}"
        )
    return list(kept.values()) or list(DEFAULT_TRIGGERS)


@attrs.define(eq=False)
class VoiceWake:
    state_dir: Path
    hub: Hub
    now_ms: Callable[[], int]
    triggers: list[str] = attrs.field(init=False)
    _file: StateFile = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._file = StateFile(self.state_dir / "settings" / "voicewake.json")
        stored = self._file.load()
        words = stored.get("triggers") if isinstance(stored, dict) else None
        self.triggers = list(DEFAULT_TRIGGERS)
        if isinstance(words, list):
            try:
                self.triggers = normalize([w for w in words if isinstance(w, str)])
            except InvalidRequest as exc:  # edited by hand beyond the limits
                log.warning("%s: %s; using the defaults", self._file.path, exc.message)

    async def replace(self, triggers: list[str]) -> list[str]:
        """Store the new list, tell everyone, return it (normalized)."""
        self.triggers = normalize(triggers)
        await self._file.save({"triggers": self.triggers, "updatedAtMs": self.now_ms()})
        self.hub.broadcast(ev.VOICEWAKE_CHANGED, VoiceWakeTriggers(list(self.triggers)))
        return list(self.triggers)

    def push(self, peer: Peer) -> None:
        """The current list to one connection (a node that just connected): no ``seq``."""
        self.hub.unicast(
            peer, ev.VOICEWAKE_CHANGED, VoiceWakeTriggers(list(self.triggers)), sequenced=False
        )
