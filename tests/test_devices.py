"""Device identity, pairing and device tokens over real sockets (CONTROL-UI.md 9-10,
PROTOCOL.md 3.5 steps 5-7 and 11, 3.8 ``auth.deviceToken``, 5.3, 7.12 device methods).

Loopback clients are approved silently; a client behind a proxy (``X-Forwarded-For`` from
loopback, no trusted proxy) is remote and waits for ``devices approve``.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_client import GatewayRpcError, open_client

from gateway.app import Running

from .conftest import TOKEN, StartGateway, in_thread, make_settings
from .nodekit import REMOTE, Key, raw_signed_connect, sign_params
from .test_handshake import expected_reason

PAIRING_EVENTS = ["device.pair.requested", "device.pair.resolved"]
OPERATOR = {"id": "cli", "version": "1.0.0", "platform": "linux", "mode": "cli"}


def connect(url: str, key: Key, **kw: Any) -> dict[str, Any]:
    """Signed connect; returns the res and closes."""
    res, client = raw_signed_connect(url, key, client=OPERATOR, **kw)
    client.close()
    return res


def rejected(url: str, key: Key, **kw: Any) -> tuple[dict[str, Any], int, str]:
    """Signed connect that must fail: ``(res, close code, close reason)``."""
    res, client = raw_signed_connect(url, key, client=OPERATOR, **kw)
    try:
        _, close = client.until_close()
    finally:
        client.close()
    assert res["ok"] is False, res
    return res, close.code, close.reason


async def test_loopback_device_is_paired_silently_and_gets_a_token(gateway: Running) -> None:
    key = Key()
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(PAIRING_EVENTS) as events,
        ):
            res = await in_thread(connect, gateway.url, key)
            assert res["ok"] is True, res
            auth = res["payload"]["auth"]
            assert re.fullmatch(r"[0-9a-f]{32}", auth["deviceToken"])
            assert isinstance(auth["issuedAtMs"], int)
            assert auth["role"] == "operator"
            resolved = await events.receive()
            assert resolved["event"] == "device.pair.resolved"
            assert resolved["payload"]["deviceId"] == key.device_id
            assert resolved["payload"]["decision"] == "approved"
            assert isinstance(resolved["seq"], int)
            listing = await operator.call("device.pair.list")
            again = await in_thread(connect, gateway.url, key)
    assert listing["pending"] == []
    [device] = listing["paired"]
    assert device["deviceId"] == key.device_id
    assert device["publicKey"] == key.public_key
    assert device["roles"] == ["operator"]
    assert device["scopes"] == ["operator.admin"]
    assert [t["role"] for t in device["tokens"]] == ["operator"]
    assert "token" not in device["tokens"][0]
    assert auth["deviceToken"] not in str(listing)
    assert again["payload"]["auth"]["deviceToken"] == auth["deviceToken"]  # reused


async def test_remote_device_waits_for_approval(gateway: Running) -> None:
    key = Key()
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(PAIRING_EVENTS) as events,
        ):
            res, code, reason = await in_thread(
                lambda: rejected(gateway.url, key, headers=REMOTE, scopes=["operator.read"])
            )
            error = res["error"]
            assert error["code"] == "NOT_PAIRED"
            assert error["message"] == "pairing required"
            details = error["details"]
            assert details["code"] == "PAIRING_REQUIRED"
            assert details["reason"] == "not-paired"
            assert details["deviceId"] == key.device_id
            assert details["requestedRole"] == "operator"
            assert details["requestedScopes"] == ["operator.read"]
            request_id = details["requestId"]
            assert code == 1008
            assert reason == expected_reason(f"pairing required (requestId: {request_id})")
            requested = await events.receive()
            assert requested["event"] == "device.pair.requested"
            payload = requested["payload"]
            assert payload["requestId"] == request_id
            assert payload["deviceId"] == key.device_id
            assert payload["publicKey"] == key.public_key
            assert payload["role"] == "operator"
            assert payload["remoteIp"] == "127.0.0.1"
            listing = await operator.call("device.pair.list")
            assert [r["requestId"] for r in listing["pending"]] == [request_id]
            assert listing["paired"] == []
            # a retry reuses the open request: no second event
            res, _, _ = await in_thread(
                lambda: rejected(gateway.url, key, headers=REMOTE, scopes=["operator.read"])
            )
            assert res["error"]["details"]["requestId"] == request_id
            approved = await operator.call("device.pair.approve", {"requestId": request_id})
            assert approved["requestId"] == request_id
            assert approved["device"]["deviceId"] == key.device_id
            resolved = await events.receive()
            assert resolved["event"] == "device.pair.resolved"
            assert resolved["payload"] == {
                "requestId": request_id,
                "deviceId": key.device_id,
                "decision": "approved",
                "ts": resolved["payload"]["ts"],
            }
            ok = await in_thread(
                lambda: connect(gateway.url, key, headers=REMOTE, scopes=["operator.read"])
            )
            assert ok["ok"] is True, ok
            assert ok["payload"]["auth"]["scopes"] == ["operator.read"]
            assert ok["payload"]["auth"]["deviceToken"]


async def test_reject_then_a_new_request(gateway: Running) -> None:
    key = Key()
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(PAIRING_EVENTS) as events,
        ):
            res, _, _ = await in_thread(lambda: rejected(gateway.url, key, headers=REMOTE))
            first = res["error"]["details"]["requestId"]
            await events.receive()  # requested
            result = await operator.call("device.pair.reject", {"requestId": first})
            assert result == {"requestId": first, "deviceId": key.device_id}
            resolved = await events.receive()
            assert resolved["payload"]["decision"] == "rejected"
            with pytest.raises(GatewayRpcError) as info:
                await operator.call("device.pair.reject", {"requestId": first})
            assert (info.value.code, info.value.message) == ("INVALID_REQUEST", "unknown requestId")
            with pytest.raises(GatewayRpcError) as info:
                await operator.call("device.pair.approve", {"requestId": first})
            assert info.value.message == "unknown requestId"
            res, _, _ = await in_thread(lambda: rejected(gateway.url, key, headers=REMOTE))
            assert res["error"]["details"]["requestId"] != first


async def test_scope_upgrade_makes_a_new_request(gateway: Running) -> None:
    key = Key()
    with trio.fail_after(20):
        async with (
            open_client(gateway.url, token=TOKEN) as operator,
            operator.subscribe(PAIRING_EVENTS) as events,
        ):
            first = await in_thread(lambda: connect(gateway.url, key, scopes=["operator.read"]))
            assert first["ok"] is True
            await events.receive()  # approved silently
            # loopback: a scope upgrade is approved on the spot, through a new request
            wider = await in_thread(
                lambda: connect(gateway.url, key, scopes=["operator.read", "operator.write"])
            )
            assert wider["ok"] is True, wider
            upgrade = await events.receive()
            assert upgrade["payload"]["decision"] == "approved"
            assert (
                wider["payload"]["auth"]["deviceToken"] != first["payload"]["auth"]["deviceToken"]
            )
            # remote: the next upgrade waits for a person, and says what is approved
            res, _, _ = await in_thread(
                lambda: rejected(gateway.url, key, headers=REMOTE, scopes=["operator.admin"])
            )
            details = res["error"]["details"]
            assert details["reason"] == "scope-upgrade"
            assert details["approvedScopes"] == ["operator.read", "operator.write"]
            assert details["approvedRoles"] == ["operator"]
            requested = await events.receive()
            assert requested["event"] == "device.pair.requested"
            assert requested["payload"]["isRepair"] is True
            assert requested["payload"]["scopes"] == [
                "operator.admin",
                "operator.read",
                "operator.write",
            ]


async def test_role_upgrade_needs_a_person_even_on_loopback(gateway: Running) -> None:
    key = Key()
    assert (await in_thread(lambda: connect(gateway.url, key)))["ok"] is True
    node = {"id": "node-host", "version": "1.0.0", "platform": "linux", "mode": "node"}

    def as_node() -> tuple[dict[str, Any], int, str]:
        res, client = raw_signed_connect(gateway.url, key, client=node, role="node", scopes=[])
        try:
            _, close = client.until_close()
        finally:
            client.close()
        return res, close.code, close.reason

    res, code, _ = await in_thread(as_node)
    assert res["error"]["code"] == "NOT_PAIRED"
    assert res["error"]["details"]["reason"] == "role-upgrade"
    assert code == 1008


async def test_device_token_signs_in_without_the_shared_secret(gateway: Running) -> None:
    key = Key()
    first = await in_thread(lambda: connect(gateway.url, key, scopes=["operator.read"]))
    device_token = first["payload"]["auth"]["deviceToken"]
    # current clients: auth.deviceToken, no shared secret
    res = await in_thread(
        lambda: connect(
            gateway.url,
            key,
            token=None,
            auth={"deviceToken": device_token},
            scopes=["operator.read"],
        )
    )
    assert res["ok"] is True, res
    assert res["payload"]["auth"]["scopes"] == ["operator.read"]
    assert res["payload"]["auth"]["deviceToken"] == device_token
    # older clients: the device token in auth.token
    res = await in_thread(
        lambda: connect(gateway.url, key, token=device_token, scopes=["operator.read"])
    )
    assert res["ok"] is True, res
    # more scopes than the token carries
    res, code, _ = await in_thread(
        lambda: rejected(
            gateway.url,
            key,
            token=None,
            auth={"deviceToken": device_token},
            scopes=["operator.admin"],
        )
    )
    assert res["error"]["details"]["code"] == "AUTH_SCOPE_MISMATCH"
    assert code == 1008
    # a wrong explicit device token
    res, code, reason = await in_thread(
        lambda: rejected(
            gateway.url, key, token=None, auth={"deviceToken": "0" * 32}, scopes=["operator.read"]
        )
    )
    message = "unauthorized: device token mismatch (rotate/reissue device token)"
    assert res["error"]["message"] == message
    assert res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH"
    assert (code, reason) == (1008, expected_reason(message))
    # another device cannot use it
    res, _, _ = await in_thread(
        lambda: rejected(gateway.url, Key(), token=None, auth={"deviceToken": device_token})
    )
    assert res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH"


async def test_wrong_shared_token_with_a_device_suggests_the_device_token(gateway: Running) -> None:
    key = Key()
    res, _, _ = await in_thread(lambda: rejected(gateway.url, key, token="wrong-token"))
    details = res["error"]["details"]
    assert details["code"] == "AUTH_TOKEN_MISMATCH"
    assert details["canRetryWithDeviceToken"] is True
    assert details["recommendedNextStep"] == "retry_with_device_token"
    assert res["error"]["message"].startswith("unauthorized: gateway token mismatch")


@pytest.mark.parametrize(
    ("tamper", "message", "code"),
    [
        ({"nonce": "not-the-challenge"}, "device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH"),
        ({"signature": "AAAA"}, "device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID"),
        ({"id": "0" * 64}, "device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH"),
        ({"signedAt": 1}, "device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED"),
    ],
)
async def test_device_proof_failures_close_1008(
    gateway: Running, tamper: dict[str, Any], message: str, code: str
) -> None:
    key = Key()

    def sign(params: dict[str, Any], nonce: str) -> dict[str, Any]:
        return sign_params(params, key, nonce, **tamper)

    res, close_code, reason = await in_thread(lambda: rejected(gateway.url, key, sign=sign))
    assert res["error"]["code"] == "INVALID_REQUEST"
    assert res["error"]["message"] == message
    assert res["error"]["details"]["code"] == code
    assert (close_code, reason) == (1008, message)


async def test_revoke_closes_the_devices_sessions_and_its_token(gateway: Running) -> None:
    key = Key()
    res, client = await in_thread(lambda: raw_signed_connect(gateway.url, key, client=OPERATOR))
    token = res["payload"]["auth"]["deviceToken"]
    try:
        async with open_client(gateway.url, token=TOKEN) as operator:
            revoked = await operator.call(
                "device.token.revoke", {"deviceId": key.device_id, "role": "operator"}
            )
            assert revoked["deviceId"] == key.device_id
            assert revoked["role"] == "operator"
            assert isinstance(revoked["revokedAtMs"], int)
            _, close = await in_thread(client.until_close)
            assert (close.code, close.reason) == (4001, "client invalidated: device token revoked")
            listing = await operator.call("device.pair.list")
            assert listing["paired"][0]["tokens"][0]["revokedAtMs"] == revoked["revokedAtMs"]
            with pytest.raises(GatewayRpcError) as info:
                await operator.call(
                    "device.token.revoke", {"deviceId": "nobody", "role": "operator"}
                )
            assert info.value.message == "unknown deviceId"
    finally:
        client.close()
    res, _, _ = await in_thread(
        lambda: rejected(gateway.url, key, token=None, auth={"deviceToken": token})
    )
    assert res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH"


async def test_rotate_replaces_the_token(gateway: Running) -> None:
    key = Key()
    old = (await in_thread(lambda: connect(gateway.url, key)))["payload"]["auth"]["deviceToken"]
    async with open_client(gateway.url, token=TOKEN) as operator:
        rotated = await operator.call(
            "device.token.rotate", {"deviceId": key.device_id, "role": "operator"}
        )
    assert rotated["tokenDelivery"] == "withheld-cross-device"
    assert "token" not in rotated
    assert rotated["scopes"] == ["operator.admin"]
    res, _, _ = await in_thread(
        lambda: rejected(gateway.url, key, token=None, auth={"deviceToken": old})
    )
    assert res["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH"
    fresh = await in_thread(lambda: connect(gateway.url, key))
    new = fresh["payload"]["auth"]["deviceToken"]
    assert new != old
    res = await in_thread(lambda: connect(gateway.url, key, token=None, auth={"deviceToken": new}))
    assert res["ok"] is True


async def test_remove_closes_and_forgets_the_device(gateway: Running) -> None:
    key = Key()
    res, client = await in_thread(lambda: raw_signed_connect(gateway.url, key, client=OPERATOR))
    assert res["ok"] is True
    try:
        async with open_client(gateway.url, token=TOKEN) as operator:
            assert await operator.call("device.pair.remove", {"deviceId": key.device_id}) == {
                "deviceId": key.device_id
            }
            _, close = await in_thread(client.until_close)
            assert (close.code, close.reason) == (4001, "client invalidated: device removed")
            assert (await operator.call("device.pair.list"))["paired"] == []
            with pytest.raises(GatewayRpcError) as info:
                await operator.call("device.pair.remove", {"deviceId": key.device_id})
            assert info.value.message == "unknown deviceId"
    finally:
        client.close()


async def test_approving_needs_the_scopes_asked_for(gateway: Running) -> None:
    key = Key()
    res, _, _ = await in_thread(
        lambda: rejected(gateway.url, key, headers=REMOTE, scopes=["operator.admin"])
    )
    request_id = res["error"]["details"]["requestId"]
    async with open_client(gateway.url, token=TOKEN, scopes=["operator.pairing"]) as pairer:
        with pytest.raises(GatewayRpcError) as info:
            await pairer.call("device.pair.approve", {"requestId": request_id})
    assert info.value.code == "FORBIDDEN"
    assert info.value.details["missingScope"] == "operator.admin"


async def test_pairing_survives_a_restart(start_gateway: StartGateway, tmp_path: Path) -> None:
    key = Key()
    first = await start_gateway(make_settings(tmp_path))
    res = await in_thread(lambda: connect(first.url, key))
    token = res["payload"]["auth"]["deviceToken"]
    remote, _, _ = await in_thread(lambda: rejected(first.url, Key(), headers=REMOTE))
    pending_id = remote["error"]["details"]["requestId"]
    first.stop()
    second = await start_gateway(make_settings(tmp_path))
    again = await in_thread(lambda: connect(second.url, key))
    assert again["payload"]["auth"]["deviceToken"] == token
    async with open_client(second.url, token=TOKEN) as operator:
        listing = await operator.call("device.pair.list")
    assert [d["deviceId"] for d in listing["paired"]] == [key.device_id]
    assert [r["requestId"] for r in listing["pending"]] == [pending_id]
    for name in ("pending.json", "paired.json"):
        mode = stat.S_IMODE((tmp_path / "devices" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert token in (tmp_path / "devices" / "paired.json").read_text()
