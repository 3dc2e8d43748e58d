"""A device identity: an Ed25519 key that signs ``connect`` (PROTOCOL.md 3.6).

The file format is the reference client's (``{version:1, deviceId, publicKeyPem,
privateKeyPem, createdAtMs}``, mode 0600), so an identity can move between clients.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _norm(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value.strip())


class DeviceIdentity:
    """Sign-in key of one device; ``device_id`` is the hex SHA-256 of the raw public key."""

    def __init__(self, key: Ed25519PrivateKey, created_at_ms: int | None = None) -> None:
        self._key = key
        raw = key.public_key().public_bytes_raw()
        self.public_key = _b64url(raw)
        self.device_id = hashlib.sha256(raw).hexdigest()
        self.created_at_ms = created_at_ms if created_at_ms is not None else int(time.time() * 1000)

    @classmethod
    def generate(cls) -> DeviceIdentity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceIdentity:
        """Read the identity file, or create it (0600) if there is none."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            identity = cls.generate()
            identity.save(path)
            return identity
        key = serialization.load_pem_private_key(data["privateKeyPem"].encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(key, data.get("createdAtMs"))

    @property
    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def save(self, path: Path) -> None:
        private = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        document = {
            "version": 1,
            "deviceId": self.device_id,
            "publicKeyPem": self.public_key_pem,
            "privateKeyPem": private,
            "createdAtMs": self.created_at_ms,
        }
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
        os.replace(tmp, path)

    def sign(self, payload: str) -> str:
        return _b64url(self._key.sign(payload.encode()))

    def device_block(
        self, params: dict[str, Any], nonce: str, signed_at_ms: int, *, version: str = "v3"
    ) -> dict[str, Any]:
        """The ``connect.device`` block for ``params`` (as they will be sent) and a nonce."""
        client = params.get("client") or {}
        auth = params.get("auth") or {}
        token = next(
            (
                auth[k]
                for k in ("token", "deviceToken", "bootstrapToken")
                if auth.get(k) is not None
            ),
            "",
        )
        fields = [
            version,
            self.device_id,
            str(client.get("id", "")),
            str(client.get("mode", "")),
            str(params.get("role") or "operator"),
            ",".join(params.get("scopes") or []),
            str(signed_at_ms),
            str(token),
            nonce,
        ]
        if version == "v3":
            fields += [_norm(client.get("platform")), _norm(client.get("deviceFamily"))]
        return {
            "id": self.device_id,
            "publicKey": self.public_key,
            "signature": self.sign("|".join(fields)),
            "signedAt": signed_at_ms,
            "nonce": nonce,
        }
