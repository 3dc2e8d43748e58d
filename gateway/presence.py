"""The presence table (PROTOCOL.md section 9). Pure: callers pass ``now_ms``.

Keys are lowercased: ``device.id`` ?? ``client.instanceId`` ?? ``connId`` for WebSocket
clients; for ``system-event`` deviceId ?? instanceId ?? host ?? ip ?? the first 64 chars of
the text. The same key merges (later fields override, roles/scopes are unioned). Listing
prunes entries older than the TTL, keeps at most ``max_entries`` and sorts newest first.
The gateway's own "self" entry is refreshed on every listing so it never expires.
Every mutation bumps ``version`` (the ``stateVersion.presence`` clients compare).
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import attrs

from . import edge
from .protocol.codec import Encoded, dumps, to_wire
from .protocol.system import PresenceEntry

PRESENCE_TTL_MS = 5 * 60 * 1000
PRESENCE_MAX = 200
UNTRACKED_MODES = frozenset({"cli", "backend", "probe"})


def self_entry(version: str, now_ms: int) -> PresenceEntry:
    host = socket.gethostname()
    plat = f"{platform.system().lower()} {platform.release()}"
    return PresenceEntry(
        ts=now_ms,
        host=host,
        version=version,
        platform=plat,
        device_family=platform.machine() or None,
        mode="gateway",
        reason="self",
        text=f"Gateway: {host} · app {version} · mode gateway · reason self",
        instance_id=f"gateway-{host}-{os.getpid()}".lower(),
    )


def _merge_unique(old: list[str] | None, new: list[str] | None) -> list[str] | None:
    if not old and not new:
        return new if new is not None else old
    return list(dict.fromkeys([*(old or []), *(new or [])]))


@attrs.define
class Presence:
    self_key: str
    ttl_ms: int = PRESENCE_TTL_MS
    max_entries: int = PRESENCE_MAX
    version: int = 1
    _entries: dict[str, PresenceEntry] = attrs.field(factory=dict, init=False)
    # the last listing as JSON and the (version, now_ms) it was made for
    _encoded: tuple[tuple[int, int], Encoded] | None = attrs.field(default=None, init=False)

    @classmethod
    def seeded(cls, gateway_version: str, now_ms: int) -> Presence:
        entry = self_entry(gateway_version, now_ms)
        table = cls(self_key=(entry.host or "gateway").lower())
        table._entries[table.self_key] = entry
        return table

    def upsert(
        self, key: str, update: PresenceEntry, *, clear: tuple[str, ...] = ()
    ) -> PresenceEntry:
        """Merge ``update`` into the entry at ``key``; ``clear`` names fields to reset.
        Every string is cleaned first (``edge.clean``): this table goes to every client."""
        key = edge.clean(key).lower()
        update = _cleaned(update)
        old = self._entries.get(key)
        if old is None:
            merged = update
        else:
            changes: dict[str, Any] = {
                a.name: getattr(update, a.name)
                for a in attrs.fields(PresenceEntry)
                if getattr(update, a.name) is not None
            }
            changes["roles"] = _merge_unique(old.roles, update.roles)
            changes["scopes"] = _merge_unique(old.scopes, update.scopes)
            merged = attrs.evolve(old, **changes)
        if clear:
            cleared: dict[str, Any] = dict.fromkeys(clear)
            merged = attrs.evolve(merged, **cleared)
        self._entries[key] = merged
        self.version += 1
        return merged

    def get(self, key: str) -> PresenceEntry | None:
        return self._entries.get(edge.clean(key).lower())

    def mark_disconnected(self, key: str, now_ms: int) -> None:
        key = edge.clean(key).lower()
        old = self._entries.get(key)
        if old is None:
            return
        self._entries[key] = attrs.evolve(old, reason="disconnect", ts=now_ms)
        self.version += 1

    def listing(self, now_ms: int) -> list[PresenceEntry]:
        own = self._entries.get(self.self_key)
        if own is not None and own.ts != now_ms:
            self._entries[self.self_key] = attrs.evolve(own, ts=now_ms)
        cutoff = now_ms - self.ttl_ms
        expired = [k for k, e in self._entries.items() if e.ts < cutoff and k != self.self_key]
        for key in expired:
            del self._entries[key]
        rows = sorted(self._entries.items(), key=lambda kv: kv[1].ts, reverse=True)
        if len(rows) > self.max_entries:
            keep = rows[: self.max_entries]
            if own is not None and all(k != self.self_key for k, _ in keep):
                keep[-1] = (self.self_key, self._entries[self.self_key])
            self._entries = dict(keep)
            rows = keep
        return [entry for _, entry in rows]

    def encoded(self, now_ms: int) -> Encoded:
        """``listing(now_ms)`` as JSON text. A listing is a function of the table (its
        ``version``) and the time, so requests in the same millisecond share one encoding."""
        key = (self.version, now_ms)
        if self._encoded is None or self._encoded[0] != key:
            self._encoded = (key, Encoded(dumps(to_wire(self.listing(now_ms)))))
        return self._encoded[1]


_TEXT_FIELDS = (
    "host",
    "ip",
    "version",
    "platform",
    "device_family",
    "model_identifier",
    "mode",
    "reason",
    "device_id",
    "instance_id",
)


def _cleaned(entry: PresenceEntry) -> PresenceEntry:
    """``entry`` with its strings made safe to share (``edge.clean``); the same object when
    nothing needed it (the usual case)."""
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(entry, name)
        if value is not None:
            safe = edge.clean(value)
            if safe is not value and safe != value:
                changes[name] = safe
    if entry.text is not None:
        text = edge.clean(entry.text, edge.TEXT_CHARS)
        if text != entry.text:
            changes["text"] = text
    for name in ("tags", "roles", "scopes"):
        values = getattr(entry, name)
        if values is not None:
            safe_list = edge.clean_list(values)
            if safe_list != values:
                changes[name] = safe_list
    return attrs.evolve(entry, **changes) if changes else entry


def event_key(
    device_id: str | None, instance_id: str | None, host: str | None, ip: str | None, text: str
) -> str:
    return (device_id or instance_id or host or ip or text[:64]).lower()


def parse_beacon(text: str) -> dict[str, str]:
    """``Node: <host> (<ip>) · app <version> · last input <N>s ago · mode <m> · reason <r>``."""
    if not text.startswith("Node:"):
        return {}
    parts = [p.strip() for p in text[len("Node:") :].split("·")]
    fields: dict[str, str] = {}
    head = parts[0] if parts else ""
    if "(" in head and head.endswith(")"):
        host, _, ip = head[:-1].partition("(")
        fields["host"], fields["ip"] = host.strip(), ip.strip()
    elif head:
        fields["host"] = head
    for part in parts[1:]:
        if part.startswith("app "):
            fields["version"] = part[4:].strip()
        elif part.startswith("mode "):
            fields["mode"] = part[5:].strip()
        elif part.startswith("reason "):
            fields["reason"] = part[7:].strip()
        elif part.startswith("last input ") and part.endswith("s ago"):
            fields["lastInputSeconds"] = part[len("last input ") : -len("s ago")].strip()
    return fields
