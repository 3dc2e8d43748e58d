"""The pairing state machines, pure: node pairing (PROTOCOL.md 7.12) and device pairing with
per-role tokens (CONTROL-UI.md section 10). The clock is an argument."""

from __future__ import annotations

import re

import attrs

from gateway.devices.pairing import DeviceClaim, DevicePairing, pairing_needed
from gateway.nodes.pairing import NodePairing, NodeSurface, public

T0 = 1_000_000


# -- node pairing -------------------------------------------------------------------------------


def test_node_request_then_approve_mints_a_token() -> None:
    store = NodePairing()
    request, created = store.request(
        NodeSurface("n1", display_name="Phone", commands=["canvas.present"]), T0
    )
    assert created
    assert request.node_id == "n1"
    assert request.is_repair is False
    assert request.ts == T0
    node = store.approve(request.request_id, T0 + 5)
    assert node is not None
    assert re.fullmatch(r"[0-9a-f]{32}", node.token)
    assert node.created_at_ms == node.approved_at_ms == T0 + 5
    assert node.commands == ["canvas.present"]
    assert store.pending == {}
    assert "token" not in attrs.asdict(public(node))


def test_a_second_request_returns_the_open_one() -> None:
    store = NodePairing()
    first, created = store.request(NodeSurface("n1"), T0)
    again, created_again = store.request(NodeSurface("n1", display_name="Renamed"), T0 + 1000)
    assert created
    assert not created_again
    assert again.request_id == first.request_id
    assert again.display_name == "Renamed"
    assert again.ts == T0 + 1000
    assert len(store.pending) == 1


def test_pending_requests_expire_after_five_minutes_of_silence() -> None:
    store = NodePairing()
    request, _ = store.request(NodeSurface("n1"), T0)
    store.request(NodeSurface("n1"), T0 + 200_000)  # a retry keeps it alive
    assert store.prune(T0 + 400_000) == []
    expired = store.prune(T0 + 200_000 + 300_001)
    assert [r.request_id for r in expired] == [request.request_id]
    assert store.approve(request.request_id, T0 + 600_000) is None


def test_reapproval_keeps_created_at_and_is_a_repair() -> None:
    store = NodePairing()
    r1, _ = store.request(NodeSurface("n1"), T0)
    first = store.approve(r1.request_id, T0)
    r2, _ = store.request(NodeSurface("n1", commands=["canvas.hide"]), T0 + 10)
    assert r2.is_repair is True
    second = store.approve(r2.request_id, T0 + 20)
    assert first is not None
    assert second is not None
    assert second.created_at_ms == T0
    assert second.approved_at_ms == T0 + 20
    assert second.token != first.token


def test_reject_verify_remove_rename() -> None:
    store = NodePairing()
    r1, _ = store.request(NodeSurface("n1"), T0)
    assert store.reject(r1.request_id) is not None
    assert store.reject(r1.request_id) is None
    r2, _ = store.request(NodeSurface("n1"), T0)
    node = store.approve(r2.request_id, T0)
    assert node is not None
    assert store.verify("n1", node.token) == node
    flipped = node.token[:-1] + ("1" if node.token[-1] == "0" else "0")
    assert store.verify("n1", flipped) is None
    assert store.verify("n1", "wrong") is None
    assert store.verify("nobody", node.token) is None
    renamed = store.rename("n1", "Kitchen")
    assert renamed is not None
    assert renamed.display_name == "Kitchen"
    assert store.rename("nobody", "x") is None
    assert store.remove("n1") is not None
    assert store.remove("n1") is None


def test_surface_approval_covers_caps_and_commands() -> None:
    store = NodePairing()
    surface = NodeSurface("n1", caps=["canvas"], commands=["canvas.present"])
    request, _ = store.request(surface, T0)
    store.approve(request.request_id, T0)
    assert store.surface_approved(surface)
    assert store.surface_approved(attrs.evolve(surface, commands=[]))
    assert not store.surface_approved(
        attrs.evolve(surface, commands=["canvas.present", "camera.list"])
    )
    assert not store.surface_approved(attrs.evolve(surface, caps=["canvas", "camera"]))


def test_listing_orders_newest_first() -> None:
    store = NodePairing()
    a, _ = store.request(NodeSurface("a"), T0)
    b, _ = store.request(NodeSurface("b"), T0 + 1)
    pending, _ = store.listing(T0 + 2)
    assert [r.node_id for r in pending] == ["b", "a"]
    store.approve(a.request_id, T0 + 3)
    store.approve(b.request_id, T0 + 4)
    _, paired = store.listing(T0 + 5)
    assert [n.node_id for n in paired] == ["b", "a"]


# -- device pairing ------------------------------------------------------------------------------


def claim(**kw: object) -> DeviceClaim:
    base: dict[str, object] = {
        "device_id": "d1",
        "public_key": "PK",
        "role": "operator",
        "scopes": ["operator.read"],
        "platform": "linux",
    }
    base.update(kw)
    return DeviceClaim(**base)  # type: ignore[arg-type]


def paired_store(**kw: object) -> tuple[DevicePairing, str]:
    store = DevicePairing()
    request, _ = store.request(claim(**kw), "not-paired", T0, silent=False)
    device = store.approve(request.request_id, T0)
    assert device is not None
    token = device.tokens[request.role].token
    return store, token


def test_pairing_needed_reasons() -> None:
    store, _ = paired_store()
    paired = store.paired["d1"]
    assert pairing_needed(None, claim()) == "not-paired"
    assert pairing_needed(paired, claim(public_key="OTHER")) == "not-paired"
    assert pairing_needed(paired, claim()) is None
    assert pairing_needed(paired, claim(scopes=[])) is None
    assert pairing_needed(paired, claim(role="node", scopes=[])) == "role-upgrade"
    assert pairing_needed(paired, claim(scopes=["operator.write"])) == "scope-upgrade"
    assert pairing_needed(paired, claim(platform="darwin")) == "metadata-upgrade"
    assert pairing_needed(paired, claim(platform=" LINUX")) is None


def test_scope_implication_admin_and_write() -> None:
    store, _ = paired_store(scopes=["operator.admin"])
    assert (
        pairing_needed(store.paired["d1"], claim(scopes=["operator.pairing", "operator.write"]))
        is None
    )
    store, _ = paired_store(scopes=["operator.write"])
    assert pairing_needed(store.paired["d1"], claim(scopes=["operator.read"])) is None


def test_approval_merges_roles_and_scopes_and_rotates_the_token() -> None:
    store, first = paired_store()
    upgrade, created = store.request(
        claim(scopes=["operator.write"]), "scope-upgrade", T0 + 1, silent=False
    )
    assert created
    assert upgrade.is_repair
    assert upgrade.scopes == ["operator.read", "operator.write"]
    device = store.approve(upgrade.request_id, T0 + 2)
    assert device is not None
    assert device.scopes == ["operator.read", "operator.write"]
    token = device.tokens["operator"]
    assert token.token != first
    assert token.rotated_at_ms == T0 + 2
    assert token.created_at_ms == T0
    assert token.scopes == ["operator.read", "operator.write"]
    node, _ = store.request(claim(role="node", scopes=[]), "role-upgrade", T0 + 3, silent=False)
    device = store.approve(node.request_id, T0 + 4)
    assert device is not None
    assert device.roles == ["node", "operator"]
    assert device.tokens["node"].scopes == []
    assert "operator" in device.tokens


def test_second_request_for_a_device_merges() -> None:
    store = DevicePairing()
    first, _ = store.request(claim(), "not-paired", T0, silent=False)
    again, created = store.request(
        claim(scopes=["operator.write"]), "not-paired", T0 + 5, silent=False
    )
    assert not created
    assert again.request_id == first.request_id
    assert again.scopes == ["operator.read", "operator.write"]
    assert again.ts == T0 + 5


def test_device_tokens_ensure_check_rotate_revoke() -> None:
    store, token = paired_store(scopes=["operator.read", "operator.write"])
    same = store.ensure_token("d1", "operator", ["operator.read"], T0 + 1)
    assert same is not None
    assert same.token == token
    assert store.check_token("d1", "operator", token, ["operator.read"])[0] == "ok"
    assert store.check_token("d1", "operator", token, ["operator.admin"])[0] == "scope-mismatch"
    assert store.check_token("d1", "operator", "nope", [])[0] == "mismatch"
    assert store.check_token("d1", "node", token, [])[0] == "mismatch"
    assert store.check_token("zz", "operator", token, [])[0] == "mismatch"
    rotated = store.rotate("d1", "operator", None, T0 + 2)
    assert not isinstance(rotated, str)
    assert rotated.token != token
    assert store.check_token("d1", "operator", token, [])[0] == "mismatch"
    assert store.rotate("d1", "operator", ["operator.admin"], T0 + 3) == (
        "requested scopes exceed the device's approved scopes"
    )
    assert store.rotate("d1", "node", None, T0) == "device is not paired for role node"
    assert store.rotate("zz", "operator", None, T0) == "unknown deviceId"
    revoked = store.revoke("d1", "operator", T0 + 4)
    assert not isinstance(revoked, str)
    assert revoked.revoked_at_ms == T0 + 4
    assert store.check_token("d1", "operator", rotated.token, [])[0] == "mismatch"
    fresh = store.ensure_token("d1", "operator", ["operator.read"], T0 + 5)
    assert fresh is not None
    assert fresh.token != rotated.token
    assert fresh.revoked_at_ms is None


def test_ensure_token_mints_when_scopes_grow() -> None:
    store, token = paired_store(scopes=["operator.admin"])
    wider = store.ensure_token("d1", "operator", ["operator.admin", "operator.pairing"], T0 + 1)
    assert wider is not None
    assert wider.token == token
    store2, token2 = paired_store(scopes=["operator.read", "operator.write"])
    store2.paired["d1"] = attrs.evolve(
        store2.paired["d1"],
        tokens={
            "operator": attrs.evolve(
                store2.paired["d1"].tokens["operator"], scopes=["operator.read"]
            )
        },
    )
    minted = store2.ensure_token("d1", "operator", ["operator.write"], T0 + 1)
    assert minted is not None
    assert minted.token != token2
    assert minted.scopes == ["operator.write"]
    assert store2.ensure_token("d1", "node", [], T0) is None  # not paired for the role


def test_drop_role_and_remove() -> None:
    store, _ = paired_store()
    request, _ = store.request(claim(role="node", scopes=[]), "role-upgrade", T0, silent=False)
    store.approve(request.request_id, T0)
    assert store.drop_role("d1", "node")
    assert store.paired["d1"].roles == ["operator"]
    assert "node" not in store.paired["d1"].tokens
    assert store.drop_role("d1", "operator")
    assert "d1" not in store.paired
    assert store.remove("d1") is None


def test_a_new_key_for_a_known_id_starts_over() -> None:
    store, _ = paired_store()
    request, _ = store.request(claim(public_key="NEW"), "not-paired", T0 + 1, silent=False)
    device = store.approve(request.request_id, T0 + 2)
    assert device is not None
    assert device.public_key == "NEW"
    assert device.created_at_ms == T0 + 2
    assert list(device.tokens) == ["operator"]
