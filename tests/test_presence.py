"""The presence table (PROTOCOL.md section 9). Pure: every call takes ``now_ms``."""

from __future__ import annotations

import json
import socket

from gateway.presence import (
    PRESENCE_MAX,
    PRESENCE_TTL_MS,
    Presence,
    event_key,
    parse_beacon,
)
from gateway.protocol.codec import to_wire
from gateway.protocol.system import PresenceEntry

T0 = 1_700_000_000_000
MINUTE = 60_000


def seeded(now: int = T0) -> Presence:
    return Presence.seeded("9.9.9", now)


def keys_of(rows: list[PresenceEntry]) -> list[str | None]:
    return [row.instance_id for row in rows]


def test_seeded_has_the_self_entry() -> None:
    table = seeded()
    host = socket.gethostname()
    assert table.self_key == host.lower()
    assert table.ttl_ms == PRESENCE_TTL_MS == 5 * 60 * 1000
    assert table.max_entries == PRESENCE_MAX == 200
    rows = table.listing(T0)
    assert len(rows) == 1
    own = rows[0]
    assert own.mode == "gateway"
    assert own.reason == "self"
    assert own.host == host
    assert own.version == "9.9.9"
    assert own.ts == T0
    assert own.platform
    assert own.text is not None
    assert own.text.startswith(f"Gateway: {host}")
    assert own.ip is None  # loopback/local: no ip


def test_upsert_new_entry_and_lowercased_key() -> None:
    table = seeded()
    entry = PresenceEntry(ts=T0, host="Laptop", mode="ui", roles=["operator"], instance_id="A")
    merged = table.upsert("Client-A", entry)
    assert merged == entry
    rows = table.listing(T0)
    assert [r.host for r in rows if r.mode == "ui"] == ["Laptop"]
    # the same key in another case merges into the same row
    table.upsert("CLIENT-a", PresenceEntry(ts=T0 + 1, reason="connect"))
    assert len(table.listing(T0 + 1)) == 2


def test_upsert_merges_later_fields_override() -> None:
    table = seeded()
    table.upsert(
        "a",
        PresenceEntry(
            ts=T0, host="old-host", version="1.0", platform="linux", mode="ui", reason="connect"
        ),
    )
    merged = table.upsert("a", PresenceEntry(ts=T0 + 10, version="2.0", reason="periodic"))
    assert merged.ts == T0 + 10
    assert merged.version == "2.0"
    assert merged.reason == "periodic"
    # fields absent from the update keep their old values
    assert merged.host == "old-host"
    assert merged.platform == "linux"
    assert merged.mode == "ui"


def test_upsert_unions_roles_and_scopes() -> None:
    table = seeded()
    table.upsert(
        "a", PresenceEntry(ts=T0, roles=["operator"], scopes=["operator.read", "operator.write"])
    )
    merged = table.upsert(
        "a", PresenceEntry(ts=T0 + 1, roles=["node", "operator"], scopes=["operator.admin"])
    )
    assert merged.roles == ["operator", "node"]
    assert merged.scopes == ["operator.read", "operator.write", "operator.admin"]
    # an update without roles/scopes keeps them
    merged = table.upsert("a", PresenceEntry(ts=T0 + 2, reason="x"))
    assert merged.roles == ["operator", "node"]
    assert merged.scopes == ["operator.read", "operator.write", "operator.admin"]


def test_upsert_clear_resets_fields() -> None:
    table = seeded()
    table.upsert("a", PresenceEntry(ts=T0, ip="10.0.0.1", host="h"))
    merged = table.upsert("a", PresenceEntry(ts=T0 + 1), clear=("ip",))
    assert merged.ip is None
    assert merged.host == "h"


def test_every_mutation_bumps_version() -> None:
    table = seeded()
    v0 = table.version
    table.upsert("a", PresenceEntry(ts=T0))
    assert table.version == v0 + 1
    table.upsert("a", PresenceEntry(ts=T0 + 1))
    assert table.version == v0 + 2
    table.mark_disconnected("a", T0 + 2)
    assert table.version == v0 + 3
    table.upsert("b", PresenceEntry(ts=T0 + 3))
    assert table.version == v0 + 4


def test_mark_disconnected_sets_reason_and_keeps_the_entry() -> None:
    table = seeded()
    table.upsert(
        "A", PresenceEntry(ts=T0, host="h", reason="connect", roles=["operator"], instance_id="a")
    )
    table.mark_disconnected("a", T0 + 5)
    rows = [r for r in table.listing(T0 + 5) if r.instance_id == "a"]
    assert len(rows) == 1
    assert rows[0].reason == "disconnect"
    assert rows[0].ts == T0 + 5
    assert rows[0].host == "h"
    assert rows[0].roles == ["operator"]


def test_mark_disconnected_unknown_key_is_a_noop() -> None:
    table = seeded()
    version = table.version
    table.mark_disconnected("ghost", T0)
    assert table.version == version
    assert len(table.listing(T0)) == 1


def test_listing_prunes_entries_older_than_ttl() -> None:
    table = seeded()
    table.upsert("old", PresenceEntry(ts=T0, instance_id="old"))
    table.upsert("edge", PresenceEntry(ts=T0 + MINUTE, instance_id="edge"))
    table.upsert("new", PresenceEntry(ts=T0 + 4 * MINUTE, instance_id="new"))
    now = T0 + MINUTE + PRESENCE_TTL_MS  # "old" is TTL+1min old; "edge" exactly TTL old
    ids = keys_of(table.listing(now))
    assert "old" not in ids
    assert "edge" in ids
    assert "new" in ids
    # pruned for good
    assert "old" not in keys_of(table.listing(now))
    ids = keys_of(table.listing(now + 1))
    assert "edge" not in ids


def test_listing_never_prunes_the_self_entry() -> None:
    table = seeded(T0)
    far = T0 + 100 * PRESENCE_TTL_MS
    rows = table.listing(far)
    assert len(rows) == 1
    assert rows[0].reason == "self"
    assert rows[0].ts == far  # refreshed on every listing


def test_listing_sorted_newest_first() -> None:
    table = seeded(T0)
    for i, ts in enumerate([T0 - 30_000, T0 - 10_000, T0 - 20_000, T0 - 40_000]):
        table.upsert(f"k{i}", PresenceEntry(ts=ts, instance_id=f"k{i}"))
    rows = table.listing(T0)
    stamps = [r.ts for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert rows[0].reason == "self"
    assert keys_of(rows[1:]) == ["k1", "k2", "k0", "k3"]


def test_listing_caps_at_max_entries_dropping_the_oldest() -> None:
    table = seeded(T0)
    table.max_entries = 5
    for i in range(10):
        table.upsert(f"k{i}", PresenceEntry(ts=T0 - 1000 + i, instance_id=f"k{i}"))
    rows = table.listing(T0)
    assert len(rows) == 5
    assert rows[0].reason == "self"
    assert keys_of(rows[1:]) == ["k9", "k8", "k7", "k6"]
    # the dropped ones are gone from the table, not just from this listing
    table.max_entries = 100
    assert len(table.listing(T0)) == 5


def test_listing_keeps_self_even_when_others_look_newer() -> None:
    table = seeded(T0)
    table.max_entries = 3
    for i in range(5):
        table.upsert(f"future{i}", PresenceEntry(ts=T0 + 10_000 + i, instance_id=f"f{i}"))
    rows = table.listing(T0)
    assert len(rows) == 3
    assert any(r.reason == "self" for r in rows)


def test_default_cap_is_200() -> None:
    table = seeded(T0)
    for i in range(250):
        table.upsert(f"k{i}", PresenceEntry(ts=T0 - 250 + i))
    rows = table.listing(T0)
    assert len(rows) == 200
    assert rows[0].reason == "self"


# -- event_key / parse_beacon ---------------------------------------------------------------


def test_encoded_listing_follows_every_change() -> None:
    """``encoded`` is reused within one millisecond, never across a change or a new time."""
    table = seeded()
    first = table.encoded(T0)
    assert table.encoded(T0) is first
    assert json.loads(first.text) == to_wire(table.listing(T0))
    table.upsert("node-a", PresenceEntry(ts=T0, host="a", instance_id="node-a"))
    changed = table.encoded(T0)
    assert keys_of(table.listing(T0)) == [row["instanceId"] for row in json.loads(changed.text)]
    assert "node-a" in changed.text
    later = table.encoded(T0 + PRESENCE_TTL_MS + 1)  # node-a has expired by then
    assert "node-a" not in later.text
    assert json.loads(later.text)[0]["ts"] == T0 + PRESENCE_TTL_MS + 1


def test_event_key_precedence_and_lowercase() -> None:
    assert event_key("DEV-1", "inst", "host", "1.2.3.4", "text") == "dev-1"
    assert event_key(None, "Inst-9", "host", "1.2.3.4", "text") == "inst-9"
    assert event_key(None, None, "MyHost", "1.2.3.4", "text") == "myhost"
    assert event_key(None, None, None, "1.2.3.4", "text") == "1.2.3.4"
    assert event_key("", "", "", "", "Some Text") == "some text"
    long_text = "X" * 100
    assert event_key(None, None, None, None, long_text) == "x" * 64


def test_parse_beacon_full() -> None:
    text = "Node: studio (192.168.1.5) · app 1.2.3 · last input 42s ago · mode ui · reason periodic"
    assert parse_beacon(text) == {
        "host": "studio",
        "ip": "192.168.1.5",
        "version": "1.2.3",
        "lastInputSeconds": "42",
        "mode": "ui",
        "reason": "periodic",
    }


def test_parse_beacon_host_without_ip() -> None:
    assert parse_beacon("Node: studio · mode node") == {"host": "studio", "mode": "node"}


def test_parse_beacon_ignores_unknown_parts() -> None:
    assert parse_beacon("Node: h (1.1.1.1) · weird part · reason x") == {
        "host": "h",
        "ip": "1.1.1.1",
        "reason": "x",
    }


def test_parse_beacon_not_a_beacon() -> None:
    assert parse_beacon("hello world") == {}
    assert parse_beacon("Gateway: host · mode gateway") == {}
    assert parse_beacon("") == {}
