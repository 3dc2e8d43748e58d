"""Inbound message -> agent and session key (CHANNELS.md 5.1). Pure.

Keys are lower-case. DMs follow ``session.dmScope``: ``main`` shares the agent's main
session (one person's assistant); the ``per-*`` scopes give each peer (per channel, per
account) a session of its own. ``session.identityLinks`` merges one person's ids across
channels. Groups always get their own session, and a forum topic its own below that.
The agent comes from the group/topic config, then ``bindings`` (exact peer, then account,
then channel), then the default agent. The model never chooses where a reply goes.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..agent.agents import default_agent_id
from ..config.model import Config

PeerKind = Literal["direct", "group"]


@attrs.frozen
class Route:
    """Where a turn came from, so the reply goes back there (``lastRoute`` of the session)."""

    channel: str
    account_id: str
    to: str
    thread_id: str | None = None  # a Telegram topic
    reply_to_id: str | None = None  # the message the turn answered


def _canonical_peer(config: Config, channel: str, peer_id: str) -> str:
    wanted = {f"{channel}:{peer_id}".lower(), peer_id.lower()}
    if channel == "telegram":
        wanted.add(f"tg:{peer_id}")
    for canonical, ids in config.session.identity_links.items():
        if any(str(i).lower() in wanted for i in ids):
            return canonical.lower()
    return peer_id.lower()


def session_rest(
    config: Config,
    *,
    channel: str,
    account_id: str,
    peer_kind: PeerKind,
    peer_id: str,
    thread_id: int | None = None,
) -> str:
    """The part of the session key after ``agent:<agentId>:``."""
    if peer_kind == "group":
        rest = f"{channel}:group:{peer_id}"
        if thread_id is not None:
            rest += f":topic:{thread_id}"
        return rest.lower()
    scope = config.session.dm_scope
    if scope == "main":
        return config.session.main_key.lower()
    peer = _canonical_peer(config, channel, peer_id)
    if scope == "per-peer":
        return f"direct:{peer}"
    if scope == "per-channel-peer":
        return f"{channel}:direct:{peer}".lower()
    return f"{channel}:{account_id}:direct:{peer}".lower()


def select_agent(
    config: Config,
    *,
    channel: str,
    account_id: str,
    peer_kind: PeerKind,
    peer_id: str,
    override: str | None = None,
) -> str:
    if override:
        return override.lower()
    peer_match = account_match = channel_match = None
    for binding in config.bindings:
        m = binding.match
        if m.channel.lower() != channel:
            continue
        if m.account_id is not None and m.account_id != account_id:
            continue
        if m.peer is not None:
            if m.peer.kind == peer_kind and m.peer.id == peer_id and peer_match is None:
                peer_match = binding.agent_id
        elif m.account_id is not None:
            account_match = account_match or binding.agent_id
        else:
            channel_match = channel_match or binding.agent_id
    chosen = peer_match or account_match or channel_match
    return (chosen or default_agent_id(config)).lower()
