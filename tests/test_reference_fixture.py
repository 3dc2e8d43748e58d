"""A real signed ``connect`` from the reference's node host, checked without Node.

``tests/fixtures/reference-node-connect.json`` was captured by ``nox -s interop`` (openclaw
2026.9.6, ``openclaw node run``, through ``interop/capture.py``): the challenge our gateway
sent and the ``connect`` the reference answered with. These pure tests prove that our
verifier accepts exactly what the reference signs, binds it to that nonce, derives the same
device id, and refuses it once anything it signed is changed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.devices.identity import (
    SKEW_MS,
    DeviceAuthFailure,
    DeviceProof,
    b64decode_lenient,
    connect_payload,
    raw_public_key,
    signature_valid,
    verify_device_proof,
)
from gateway.nodes.policy import CommandPolicy
from gateway.protocol import validate
from gateway.protocol.codec import from_wire
from gateway.protocol.handshake import ConnectParams

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "reference-node-connect.json").read_text()
)
CHALLENGE: dict[str, Any] = FIXTURE["challenge"]
CONNECT: dict[str, Any] = FIXTURE["connect"]
NONCE: str = CHALLENGE["payload"]["nonce"]
SIGNED_AT: int = CONNECT["params"]["device"]["signedAt"]


def params(raw: dict[str, Any] | None = None) -> ConnectParams:
    return from_wire(ConnectParams, raw if raw is not None else CONNECT["params"])


def test_the_frame_is_a_valid_connect_for_our_schema() -> None:
    assert CONNECT["type"] == "req"
    assert CONNECT["method"] == "connect"
    assert validate.problem("RequestFrame", CONNECT) is None
    assert validate.problem("ConnectParams", CONNECT["params"]) is None


def test_the_reference_signature_verifies_as_v3() -> None:
    result = verify_device_proof(params(), NONCE, SIGNED_AT)
    assert isinstance(result, DeviceProof), result
    assert result.version == "v3"
    device = CONNECT["params"]["device"]
    assert result.device_id == device["id"]
    assert result.public_key == device["publicKey"]


def test_device_id_is_the_sha256_of_the_raw_public_key() -> None:
    device = CONNECT["params"]["device"]
    raw = raw_public_key(device["publicKey"])
    assert raw is not None
    assert len(raw) == 32
    assert hashlib.sha256(raw).hexdigest() == device["id"]


def test_it_is_bound_to_the_challenge() -> None:
    device = CONNECT["params"]["device"]
    assert device["nonce"] == NONCE
    assert device["signedAt"] == CHALLENGE["payload"]["ts"]  # the client copies the challenge ts
    failure = verify_device_proof(params(), "another-connections-nonce", SIGNED_AT)
    assert failure == DeviceAuthFailure("device-nonce-mismatch")


def test_it_was_signed_over_v3_only() -> None:
    p = params()
    assert p.device is not None
    raw = raw_public_key(p.device.public_key)
    assert raw is not None
    assert signature_valid(raw, connect_payload(p, p.device, NONCE, "v3"), p.device.signature)
    assert not signature_valid(raw, connect_payload(p, p.device, NONCE, "v2"), p.device.signature)
    assert b64decode_lenient(p.device.signature) is not None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(scopes=["operator.admin"]),
        lambda p: p.update(role="operator"),
        lambda p: p["auth"].update(token="someone-elses-token"),
        lambda p: p["client"].update(platform="darwin"),
        lambda p: p["client"].update(id="cli"),
        lambda p: p["device"].update(signedAt=p["device"]["signedAt"] + 1),
    ],
)
def test_changing_anything_signed_breaks_it(tamper: Any) -> None:
    raw = copy.deepcopy(CONNECT["params"])
    tamper(raw)
    assert verify_device_proof(params(raw), NONCE, SIGNED_AT) == DeviceAuthFailure(
        "device-signature"
    )


def test_it_expires_outside_the_skew_window() -> None:
    assert isinstance(verify_device_proof(params(), NONCE, SIGNED_AT + SKEW_MS), DeviceProof)
    late = verify_device_proof(params(), NONCE, SIGNED_AT + SKEW_MS + 1)
    assert late == DeviceAuthFailure("device-signature-stale")


def test_what_we_would_relay_to_this_node() -> None:
    p = params()
    assert CommandPolicy().effective(
        p.commands or [], p.client.platform, p.client.device_family
    ) == [
        "browser.proxy",
        "system.run",
        "system.run.prepare",
        "system.which",
    ]
