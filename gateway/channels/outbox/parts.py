"""A payload as ordered parts, fixed when the record is written (CHANNELS.md 3.4, 4.3).

Text is split at the account's ``textChunkLimit`` (counted in UTF-16 code units, fences
closed and reopened: ``telegram/format.split_text``); each chunk is rendered to the
platform's markup only when it is sent. Media items come first, the first one carrying
the text as its caption when the text fits a caption (1024 characters on both
platforms); longer text follows as its own messages.
"""

from __future__ import annotations

import json

from ..telegram.format import split_text, utf16_len
from .model import PartSpec, Payload

CAPTION_LIMIT = 1024


def plan_parts(
    payload: Payload, *, chunk_limit: int, chunk_mode: str = "length"
) -> tuple[PartSpec, ...]:
    text = payload.text.strip()
    parts: list[PartSpec] = []
    caption_used = False
    for i, media in enumerate(payload.media):
        item = media.wire()
        if i == 0 and text and utf16_len(text) <= CAPTION_LIMIT:
            item["caption"] = text
            caption_used = True
        parts.append(PartSpec("media", json.dumps(item, ensure_ascii=False, sort_keys=True)))
    if text and not caption_used:
        parts += [PartSpec("text", chunk) for chunk in split_text(text, chunk_limit, chunk_mode)]
    return tuple(parts)
