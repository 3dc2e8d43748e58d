"""Ed25519 device proofs, pure (CONTROL-UI.md section 9, PROTOCOL.md 3.6 and 5.3).

Every failure message, detail code and reason; v3 and v2 payloads; PEM keys; the skew
window; nonce binding; the token slot; metadata normalisation; the reference's error order.
Keys are signed with ``tests/nodekit.py`` (written from the spec's client side).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.devices.identity import (
    SKEW_MS,
    DeviceAuthFailure,
    DeviceProof,
    device_id_of,
    normalize_metadata,
    signature_token,
    signed_payload,
    verify_device_proof,
)
from gateway.protocol.codec import from_wire
from gateway.protocol.frames import ErrorCode
from gateway.protocol.handshake import ConnectAuth, ConnectParams

from .nodekit import Key, sign_params

NONCE = "5d1f0a3e-8c2b-4f7e-9d61-0b2c7a4e9f10"
NOW = 1_760_000_000_000


def base_params(**extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": "cli", "version": "1.0.0", "platform": "Linux", "mode": "cli"},
        "caps": [],
        "role": "operator",
        "scopes": ["operator.admin", "operator.read"],
        "auth": {"token": "T"},
    }
    params.update(extra)
    return params


def check(
    raw: dict[str, Any], nonce: str = NONCE, now: int = NOW
) -> DeviceProof | DeviceAuthFailure:
    return verify_device_proof(from_wire(ConnectParams, raw), nonce, now)


def failure(raw: dict[str, Any], reason: str, **kw: Any) -> DeviceAuthFailure:
    result = check(raw, **kw)
    assert isinstance(result, DeviceAuthFailure), result
    assert result.reason == reason, result
    return result


KEY = Key()


def test_v3_signature_is_accepted() -> None:
    result = check(sign_params(base_params(), KEY, NONCE, signed_at=NOW))
    assert result == DeviceProof(KEY.device_id, KEY.public_key, "v3")


def test_v2_signature_is_accepted() -> None:
    result = check(sign_params(base_params(), KEY, NONCE, signed_at=NOW, version="v2"))
    assert isinstance(result, DeviceProof)
    assert result.version == "v2"


def test_pem_public_key_is_accepted_and_normalised() -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW, publicKey=KEY.pem)
    result = check(raw)
    assert isinstance(result, DeviceProof)
    assert result.public_key == KEY.public_key  # canonical base64url of the raw key
    assert device_id_of(KEY.pem) == KEY.device_id == device_id_of(KEY.public_key)


def test_standard_base64_signature_and_padded_key_are_accepted() -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW)
    sig = raw["device"]["signature"]
    std = base64.b64encode(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))).decode()
    raw["device"]["signature"] = std
    raw["device"]["publicKey"] = base64.b64encode(KEY.raw).decode()  # padded, standard
    assert isinstance(check(raw), DeviceProof)


# -- every failure: message, code, reason -------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "message", "code"),
    [
        ("device-id-mismatch", "device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH"),
        ("device-signature-stale", "device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED"),
        ("device-nonce-missing", "device nonce required", "DEVICE_AUTH_NONCE_REQUIRED"),
        ("device-nonce-mismatch", "device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH"),
        ("device-signature", "device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID"),
        ("device-public-key", "device public key invalid", "DEVICE_AUTH_PUBLIC_KEY_INVALID"),
    ],
)
def test_failure_table(reason: str, message: str, code: str) -> None:
    error = DeviceAuthFailure(reason).error()
    assert error.code == ErrorCode.INVALID_REQUEST
    assert error.message == message
    assert error.details == {"code": code, "reason": reason}


def test_device_id_must_be_the_hash_of_the_key() -> None:
    other = Key()
    failure(
        sign_params(base_params(), KEY, NONCE, signed_at=NOW, id=other.device_id),
        "device-id-mismatch",
    )
    failure(
        sign_params(base_params(), KEY, NONCE, signed_at=NOW, id=KEY.device_id.upper()),
        "device-id-mismatch",
    )


@pytest.mark.parametrize(
    "bad_key",
    ["!!!not base64!!!", "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n"],
)
def test_undecodable_key_is_an_identity_mismatch(bad_key: str) -> None:
    failure(
        sign_params(base_params(), KEY, NONCE, signed_at=NOW, publicKey=bad_key),
        "device-id-mismatch",
    )


def test_a_non_ed25519_pem_key_is_an_identity_mismatch() -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    failure(
        sign_params(base_params(), KEY, NONCE, signed_at=NOW, publicKey=rsa_pem),
        "device-id-mismatch",
    )


@pytest.mark.parametrize("skew", [SKEW_MS + 1, -(SKEW_MS + 1), 10 * SKEW_MS])
def test_signature_outside_the_skew_window_is_expired(skew: int) -> None:
    failure(sign_params(base_params(), KEY, NONCE, signed_at=NOW - skew), "device-signature-stale")


@pytest.mark.parametrize("skew", [SKEW_MS, -SKEW_MS, 0])
def test_signature_at_the_edge_of_the_window_is_fresh(skew: int) -> None:
    assert isinstance(
        check(sign_params(base_params(), KEY, NONCE, signed_at=NOW - skew)), DeviceProof
    )


@pytest.mark.parametrize("nonce", [None, "", "   "])
def test_nonce_is_required(nonce: str | None) -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW)
    if nonce is None:
        del raw["device"]["nonce"]
    else:
        raw["device"]["nonce"] = nonce
    failure(raw, "device-nonce-missing")


def test_nonce_must_be_this_connections_challenge() -> None:
    failure(
        sign_params(base_params(), KEY, "another-nonce", signed_at=NOW), "device-nonce-mismatch"
    )


def test_nonce_is_trimmed_before_comparing() -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW)
    raw["device"]["nonce"] = f"  {NONCE} "
    assert isinstance(check(raw), DeviceProof)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(scopes=["operator.admin"]),  # asks for other scopes than signed
        lambda p: p.update(role="node"),
        lambda p: p["client"].update(id="other"),
        lambda p: p["client"].update(mode="ui"),
        lambda p: p["client"].update(platform="darwin"),
        lambda p: p.update(auth={"token": "other"}),
    ],
)
def test_signature_covers_what_is_asked_for(tamper: Any) -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW)
    tamper(raw)
    failure(raw, "device-signature")


def test_signature_by_another_key_is_invalid() -> None:
    forged = sign_params(base_params(), Key(), NONCE, signed_at=NOW)
    forged["device"]["id"] = KEY.device_id
    forged["device"]["publicKey"] = KEY.public_key
    failure(forged, "device-signature")


def test_signed_at_is_part_of_the_signature() -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW)
    raw["device"]["signedAt"] = NOW + 1
    failure(raw, "device-signature")


# -- precedence: the first failing check wins -------------------------------------------------


def test_identity_is_checked_before_freshness() -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW - 10 * SKEW_MS, id=Key().device_id)
    failure(raw, "device-id-mismatch")


def test_freshness_is_checked_before_the_nonce() -> None:
    raw = sign_params(base_params(), KEY, "wrong", signed_at=NOW - 10 * SKEW_MS)
    failure(raw, "device-signature-stale")


def test_nonce_is_checked_before_the_signature() -> None:
    raw = sign_params(base_params(), KEY, NONCE, signed_at=NOW, signature="AAAA")
    raw["device"]["nonce"] = "wrong"
    failure(raw, "device-nonce-mismatch")


# -- the payload itself ------------------------------------------------------------------------


def test_payload_layout_v3_and_v2() -> None:
    common: dict[str, Any] = {
        "device_id": "d" * 64,
        "client_id": "cli",
        "client_mode": "cli",
        "role": "operator",
        "scopes": ["operator.admin", "operator.read"],
        "signed_at_ms": 1737264000000,
        "token": "T",
        "nonce": "n",
    }
    assert signed_payload("v3", **common, platform=" Linux", device_family=None) == (
        f"v3|{'d' * 64}|cli|cli|operator|operator.admin,operator.read|1737264000000|T|n|linux|"
    )
    assert signed_payload("v2", **common) == (
        f"v2|{'d' * 64}|cli|cli|operator|operator.admin,operator.read|1737264000000|T|n"
    )


def test_metadata_lowers_ascii_only() -> None:
    assert normalize_metadata("  MacOS 14.5 ") == "macos 14.5"
    assert normalize_metadata("ÄPFEL") == "Äpfel"  # no Unicode case folding
    assert normalize_metadata(None) == ""
    assert normalize_metadata(42) == ""


@pytest.mark.parametrize(
    ("auth", "slot"),
    [
        (None, ""),
        ({}, ""),
        ({"token": "a", "deviceToken": "b", "bootstrapToken": "c"}, "a"),
        ({"deviceToken": "b", "bootstrapToken": "c"}, "b"),
        ({"bootstrapToken": "c"}, "c"),
        ({"token": "", "deviceToken": "b"}, ""),  # an empty string is present
        ({"password": "p"}, ""),
    ],
)
def test_token_slot_precedence(auth: dict[str, str] | None, slot: str) -> None:
    parsed = from_wire(ConnectAuth, auth) if auth is not None else None
    assert signature_token(parsed) == slot


def test_device_token_in_its_own_field_is_signed() -> None:
    raw = sign_params(base_params(auth={"deviceToken": "dt"}), KEY, NONCE, signed_at=NOW)
    assert isinstance(check(raw), DeviceProof)


def test_absent_scopes_sign_as_empty() -> None:
    params = base_params()
    del params["scopes"]
    assert isinstance(check(sign_params(params, KEY, NONCE, signed_at=NOW)), DeviceProof)
