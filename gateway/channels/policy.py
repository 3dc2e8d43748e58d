"""Who may reach the agent through a channel (CHANNELS.md 3.5). Pure.

DMs: ``disabled`` drops, ``open`` allows, ``allowlist`` needs the sender in ``allowFrom``,
``pairing`` (default) allows ``allowFrom`` and approved senders and starts the pairing flow
for anyone else. Groups: ``groupPolicy`` and the ``groups`` table decide which chats count,
the group/``groupAllowFrom``/``allowFrom`` lists which senders (DM pairing approvals never
grant group access), and mention gating decides whether a message starts a run or is only
kept as history.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Literal, Protocol

import attrs

from ..config.channels import TelegramGroup, TelegramTopic, normalize_allow_entry
from .accounts import TelegramAccountConfig
from .telegram.inbound import Message

Action = Literal["run", "pair", "drop", "history"]


@attrs.frozen
class Decision:
    action: Action
    reason: str
    agent_id: str | None = None


def _allowed(sender: str, entries: Collection[str]) -> bool:
    return "*" in entries or sender in entries


class DmPolicyConfig(Protocol):
    @property
    def dm_policy(self) -> str: ...
    @property
    def allow_from(self) -> tuple[str, ...]: ...


def dm_decision(cfg: DmPolicyConfig, sender_id: str, approved: Collection[str]) -> Decision:
    policy = cfg.dm_policy
    if policy == "disabled":
        return Decision("drop", "dm disabled (dmPolicy disabled)")
    if policy == "open" or _allowed(sender_id, cfg.allow_from):
        return Decision("run", "allowed")
    if policy == "allowlist":
        return Decision("drop", "blocked (allowlist)")
    if sender_id in approved:
        return Decision("run", "approved by pairing")
    return Decision("pair", "pairing request")


def _utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le", "surrogatepass")
    return data[offset * 2 : (offset + length) * 2].decode("utf-16-le", "replace")


def mentioned(
    msg: Message,
    bot_username: str | None,
    bot_id: str | None,
    patterns: Sequence[str],
) -> bool:
    handle = f"@{bot_username}".lower() if bot_username else None
    for entity in msg.entities:
        piece = _utf16_slice(msg.text, entity.offset, entity.length).lower()
        if entity.type == "mention" and handle and piece == handle:
            return True
        if entity.type == "text_mention" and bot_id and entity.user_id == bot_id:
            return True
        if entity.type == "bot_command" and handle and piece.endswith(handle):
            return True
    if msg.reply is not None and msg.reply.from_bot:
        return True
    for pattern in patterns:
        try:
            if re.search(pattern, msg.text, re.IGNORECASE):
                return True
        except re.error:
            continue
    return False


def _entries(values: Sequence[str | int] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(normalize_allow_entry(v) for v in values)


def group_decision(
    cfg: TelegramAccountConfig,
    msg: Message,
    *,
    bot_username: str | None,
    bot_id: str | None,
    mention_patterns: Sequence[str] = (),
) -> Decision:
    if cfg.group_policy == "disabled":
        return Decision("drop", "groups disabled (groupPolicy disabled)")
    group: TelegramGroup | None = cfg.groups.get(msg.chat_id)
    wildcard: TelegramGroup | None = cfg.groups.get("*")
    entry = group or wildcard
    if cfg.group_policy == "allowlist" and entry is None:
        return Decision("drop", f"group {msg.chat_id} not allowlisted (add it under groups)")
    if entry is not None and entry.enabled is False:
        return Decision("drop", f"group {msg.chat_id} disabled")
    topic: TelegramTopic | None = None
    if entry is not None and msg.thread_id is not None:
        topic = entry.topics.get(str(msg.thread_id))
    if topic is not None and topic.enabled is False:
        return Decision("drop", f"topic {msg.thread_id} disabled")
    group_policy = (entry.group_policy if entry and entry.group_policy else None) or (
        cfg.group_policy
    )
    if group_policy != "open":
        senders = (
            _entries(topic.allow_from if topic else None)
            or _entries(entry.allow_from if entry else None)
            or cfg.group_allow_from
            or cfg.allow_from
        )
        if not _allowed(msg.sender_id, senders or ()):
            return Decision("drop", "blocked (group allowlist)")
    require = next(
        (
            v
            for v in (
                topic.require_mention if topic else None,
                group.require_mention if group else None,
                wildcard.require_mention if wildcard else None,
            )
            if v is not None
        ),
        True,
    )
    agent_id = (topic.agent_id if topic else None) or (entry.agent_id if entry else None)
    if require and not mentioned(msg, bot_username, bot_id, mention_patterns):
        return Decision("history", "mention required", agent_id)
    return Decision("run", "allowed", agent_id)
