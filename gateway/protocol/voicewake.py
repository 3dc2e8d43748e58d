"""Voice wake words and ``wake``: wire types (PROTOCOL.md 7.14, 8)."""

from __future__ import annotations

from typing import Literal

import attrs

from .model import closed, schema

MAX_TRIGGERS = 32
MAX_TRIGGER_CHARS = 64


@closed
@attrs.frozen
class VoiceWakeSetParams:
    triggers: list[str] = attrs.field(
        metadata=schema(
            description=(
                f"wake words: trimmed, blanks dropped, duplicates merged; at most {MAX_TRIGGERS} "
                f"of at most {MAX_TRIGGER_CHARS} characters; none left means the defaults"
            )
        )
    )


@closed
@attrs.frozen
class VoiceWakeTriggers:
    """``voicewake.get`` / ``voicewake.set`` result and the ``voicewake.changed`` payload."""

    triggers: list[str]


@closed
@attrs.frozen
class WakeParams:
    mode: Literal["now", "next-heartbeat"]
    text: str = attrs.field(metadata=schema(min_length=1))
    session_key: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
