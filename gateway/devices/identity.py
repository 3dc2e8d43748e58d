"""Ed25519 device proofs in ``connect`` (CONTROL-UI.md section 9, PROTOCOL.md 3.6). Pure.

A client proves it holds a device key by signing a ``|``-joined string that binds the
challenge nonce this connection was sent, the credential it presents and what it asks for:

    v3|deviceId|clientId|clientMode|role|scopesCsv|signedAtMs|token|nonce|platform|deviceFamily
    v2|deviceId|clientId|clientMode|role|scopesCsv|signedAtMs|token|nonce

``deviceId`` is the lowercase hex SHA-256 of the 32 raw public-key bytes, so an identity
cannot be claimed without its key. :func:`verify_device_proof` checks in the reference's
order (id, freshness, nonce, signature, key) because clients branch on the first failure
they see; every failure is one :class:`DeviceAuthFailure` with the wire message, the
``details.code`` and the ``details.reason`` of PROTOCOL.md 5.3.

The clock comes in as ``now_ms``; nothing here reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import attrs

from ..errors import PeerError
from ..protocol.handshake import ConnectAuth, ConnectParams, DeviceIdentity

SKEW_MS = 120_000  # |now - signedAt| allowed; a client that copies the challenge ts is fresh
MAX_ENCODED_LENGTH = 4096  # no key or signature needs more; bounds the work per connect
SPKI_ED25519_PREFIX = bytes.fromhex("302a300506032b6570032100")

# reason -> (message, details.code): the table of PROTOCOL.md 5.3
FAILURES: dict[str, tuple[str, str]] = {
    "device-id-mismatch": ("device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH"),
    "device-signature-stale": ("device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED"),
    "device-nonce-missing": ("device nonce required", "DEVICE_AUTH_NONCE_REQUIRED"),
    "device-nonce-mismatch": ("device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH"),
    "device-signature": ("device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID"),
    "device-public-key": ("device public key invalid", "DEVICE_AUTH_PUBLIC_KEY_INVALID"),
}


@attrs.frozen
class DeviceAuthFailure:
    reason: str

    @property
    def message(self) -> str:
        return FAILURES[self.reason][0]

    @property
    def detail_code(self) -> str:
        return FAILURES[self.reason][1]

    def error(self) -> PeerError:
        """``INVALID_REQUEST`` with ``details{code, reason}``; the close is 1008 with the message."""
        return PeerError(self.message, details={"code": self.detail_code, "reason": self.reason})


@attrs.frozen
class DeviceProof:
    """A verified identity: its id, its key as canonical base64url, the payload version."""

    device_id: str
    public_key: str
    version: str


# -- encodings ---------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    """RFC 4648 section 5 without padding: how keys and signatures travel."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64decode_lenient(text: str) -> bytes | None:
    """base64url or standard base64, padding optional; ``None`` if it is neither."""
    if not text or len(text) > MAX_ENCODED_LENGTH:
        return None
    normalized = text.strip().replace("-", "+").replace("_", "/")
    normalized += "=" * (-len(normalized) % 4)
    try:
        return base64.b64decode(normalized, validate=True)
    except (binascii.Error, ValueError):
        return None


def raw_public_key(public_key: str) -> bytes | None:
    """The raw key bytes from base64url (clients) or a PEM SPKI block (accepted too)."""
    if "BEGIN" in public_key:
        # cryptography is imported on first use: ~9 MB of RSS a gateway without devices
        # never needs (BENCHMARKS.md, idle RSS)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        if len(public_key) > MAX_ENCODED_LENGTH:
            return None
        try:
            key = load_pem_public_key(public_key.encode())
        except (ValueError, TypeError):
            return None
        if not isinstance(key, Ed25519PublicKey):
            return None
        return key.public_bytes_raw()
    raw = b64decode_lenient(public_key)
    return raw or None


def device_id_of(public_key: str) -> str | None:
    """``deviceId`` for a public key (base64url or PEM); ``None`` if the key does not decode."""
    raw = raw_public_key(public_key)
    return hashlib.sha256(raw).hexdigest() if raw is not None else None


# -- the signed payload ------------------------------------------------------------------------


def normalize_metadata(value: object) -> str:
    """Trimmed, with only ASCII A-Z lowered (no Unicode case folding); non-strings -> ``""``."""
    if not isinstance(value, str):
        return ""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value.strip())


def signature_token(auth: ConnectAuth | None) -> str:
    """The credential the client signed: the first of token, deviceToken, bootstrapToken
    that is present (an empty string counts), else ``""``."""
    if auth is None:
        return ""
    for candidate in (auth.token, auth.device_token, auth.bootstrap_token):
        if candidate is not None:
            return candidate
    return ""


def signed_payload(
    version: str,
    *,
    device_id: str,
    client_id: str,
    client_mode: str,
    role: str,
    scopes: list[str],
    signed_at_ms: int,
    token: str,
    nonce: str,
    platform: object = None,
    device_family: object = None,
) -> str:
    """The exact string a client signs (``v3`` or ``v2``)."""
    fields = [
        version,
        device_id,
        client_id,
        client_mode,
        role,
        ",".join(scopes),
        str(signed_at_ms),
        token,
        nonce,
    ]
    if version == "v3":
        fields += [normalize_metadata(platform), normalize_metadata(device_family)]
    return "|".join(fields)


def connect_payload(params: ConnectParams, device: DeviceIdentity, nonce: str, version: str) -> str:
    """:func:`signed_payload` for a ``connect`` as the client sent it."""
    return signed_payload(
        version,
        device_id=device.id,
        client_id=params.client.id,
        client_mode=params.client.mode,
        role=params.role,
        scopes=list(params.scopes or []),
        signed_at_ms=device.signed_at,
        token=signature_token(params.auth),
        nonce=nonce,
        platform=params.client.platform,
        device_family=params.client.device_family,
    )


def signature_valid(raw_key: bytes, payload: str, signature: str) -> bool:
    sig = b64decode_lenient(signature)
    if sig is None:
        return False
    from cryptography.exceptions import InvalidSignature  # on first use, as above
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(sig, payload.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


# -- the check ---------------------------------------------------------------------------------


def verify_device_proof(
    params: ConnectParams, challenge_nonce: str, now_ms: int
) -> DeviceProof | DeviceAuthFailure:
    """Check ``params.device`` (which must be present) against this connection's nonce."""
    device = params.device
    assert device is not None, "only called for a connect with a device block"
    raw = raw_public_key(device.public_key)
    if raw is None or hashlib.sha256(raw).hexdigest() != device.id:
        return DeviceAuthFailure("device-id-mismatch")
    if abs(now_ms - device.signed_at) > SKEW_MS:
        return DeviceAuthFailure("device-signature-stale")
    nonce = (device.nonce or "").strip()
    if not nonce:
        return DeviceAuthFailure("device-nonce-missing")
    if nonce != challenge_nonce:
        return DeviceAuthFailure("device-nonce-mismatch")
    version = next(
        (
            v
            for v in ("v3", "v2")
            if signature_valid(raw, connect_payload(params, device, nonce, v), device.signature)
        ),
        None,
    )
    if version is None:
        return DeviceAuthFailure("device-signature")
    if len(raw) != 32:  # unreachable after a valid signature; kept for the reference's order
        return DeviceAuthFailure("device-public-key")
    return DeviceProof(device.id, b64url(raw), version)
