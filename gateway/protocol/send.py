"""Wire types of ``send`` (PROTOCOL.md 7.5, CHANNELS.md 5.4)."""

from __future__ import annotations

from typing import Literal

import attrs

from .model import schema

DeliveryStateName = Literal["sent", "queued"]


@attrs.frozen
class SendParams:
    """Open: the reference's clients send more optional fields (``gifPlayback``, ...)."""

    to: str = attrs.field(metadata=schema(min_length=1))
    idempotency_key: str = attrs.field(metadata=schema(min_length=1, max_length=256))
    message: str | None = None
    media_url: str | None = None
    media_urls: list[str] | None = None
    gif_playback: bool | None = None
    channel: str | None = None
    account_id: str | None = None
    thread_id: str | None = None
    reply_to_id: str | None = None
    session_key: str | None = None
    agent_id: str | None = None
    silent: bool | None = None
    as_voice: bool | None = None
    buffer: str | None = attrs.field(default=None, metadata=schema(description="base64"))
    filename: str | None = None
    content_type: str | None = None
    force_document: bool | None = None
    parse_mode: Literal["HTML"] | None = None


@attrs.frozen
class SendResult:
    """``messageId`` is the platform's id of the last part ('' while queued)."""

    run_id: str
    message_id: str
    channel: str
    delivery_state: DeliveryStateName
    chat_id: str | None = None
    channel_id: str | None = None
    to_jid: str | None = None
    conversation_id: str | None = None
