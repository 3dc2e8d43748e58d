"""The device half of ``connect`` (PROTOCOL.md 3.5 steps 5-7 and 11, CONTROL-UI.md 9-10).

The session driver calls :func:`admit` once, after the shared secret was checked (its failure,
if any, is passed in rather than raised, because a device may still sign in with its token):

1. no ``device`` block: the shared-secret verdict stands;
2. a ``device`` block: verify the Ed25519 proof against this connection's challenge nonce
   (a failure is ``INVALID_REQUEST`` + ``details{code, reason}``, close 1008);
3. shared secret wrong or missing: accept the device token for this device and role
   instead (``auth.deviceToken``, or older clients' ``auth.token``) if it is current and
   covers the scopes asked for; else the unauthorized error, telling the client whether a
   retry with its stored device token may help;
4. signed in with the secret: the device must be paired for the role and scopes it asks for
   (and keep its pinned platform); otherwise a pairing request is made -- approved on the
   spot for a local-direct client asking for a first pairing or more scopes, left pending for
   a person otherwise (``NOT_PAIRED "pairing required"``, close 1008);
5. the device's token for the role is issued or reused (``hello-ok.auth.deviceToken``).

"Local direct" is a loopback peer that came through no proxy (no forwarding headers); a
browser page (an ``Origin`` header) only counts when it is the Control UI or WebChat.
"""

from __future__ import annotations

import attrs

from ..auth import AuthFailure, granted_scopes
from ..errors import GatewayError, NotPaired, Unauthorized
from ..protocol.devices import DeviceTokenRecord
from ..protocol.handshake import ConnectParams
from .identity import DeviceAuthFailure, DeviceProof, verify_device_proof
from .pairing import DeviceClaim, pairing_needed
from .service import DeviceService

UI_CLIENT_IDS = frozenset(
    {"smart-agent-neo-control-ui", "openclaw-control-ui", "webchat-ui", "webchat"}
)
SILENT_REASONS = frozenset({"not-paired", "scope-upgrade"})

REQUIREMENTS = {
    "not-paired": "device is not approved yet",
    "role-upgrade": "device is asking for a higher role than currently approved",
    "scope-upgrade": "device is asking for more scopes than currently approved",
    "metadata-upgrade": "device identity changed and must be re-approved",
}


@attrs.frozen
class ConnectFacts:
    params: ConnectParams
    nonce: str  # the challenge this connection was sent
    remote_ip: str | None
    local_direct: bool
    browser_origin: bool  # the upgrade carried an Origin header


@attrs.frozen
class Grant:
    """What ``connect`` was granted: how it signed in, the scopes, the device and its token."""

    auth_method: str
    scopes: list[str]
    proof: DeviceProof | None = None
    token: DeviceTokenRecord | None = None


def _is_ui(params: ConnectParams) -> bool:
    return params.client.mode == "webchat" or params.client.id.lower() in UI_CLIENT_IDS


def silent_approval(reason: str, facts: ConnectFacts) -> bool:
    """CONTROL-UI.md 10: local-direct, not a foreign browser page, a first pairing or more
    scopes. Role and metadata changes always wait for a person."""
    if not facts.local_direct or reason not in SILENT_REASONS:
        return False
    return not facts.browser_origin or _is_ui(facts.params)


def _unauthorized(failure: AuthFailure, *, device_retry: bool) -> GatewayError:
    error = failure.error()
    details = dict(error.details) if isinstance(error.details, dict) else {}
    details["canRetryWithDeviceToken"] = device_retry
    if device_retry:
        details["recommendedNextStep"] = "retry_with_device_token"
    error.details = details
    return error


def _device_token_failure(message: str, code: str) -> GatewayError:
    return Unauthorized(
        message,
        details={
            "code": code,
            "canRetryWithDeviceToken": False,
            "recommendedNextStep": "update_auth_credentials",
        },
    )


async def admit(
    devices: DeviceService,
    facts: ConnectFacts,
    secret_failure: AuthFailure | None,
    auth_mode: str,
    scopes: list[str] | None = None,
) -> Grant:
    """Decide the device part of a connect; raises a :class:`GatewayError` to refuse it
    (its ``shape()`` is the ``res`` error, ``close_code``/``close_reason`` the close).
    ``scopes`` are what earlier checks granted (default: PROTOCOL.md 3.5 step 9).

    Cancellation: safe; a store write already started completes (``StateFile.save``)."""
    params = facts.params
    if params.device is None:
        if secret_failure is not None:
            raise secret_failure.error()
        return Grant(
            auth_mode, scopes if scopes is not None else granted_scopes(params.role, params.scopes)
        )
    now = devices.now_ms()
    proof = verify_device_proof(params, facts.nonce, now)
    if isinstance(proof, DeviceAuthFailure):
        raise proof.error()
    pairing = devices.pairing
    if secret_failure is not None:
        return await _with_device_token(devices, facts, proof, secret_failure)
    if scopes is None:
        scopes = granted_scopes(params.role, params.scopes)
    c = params.client
    claim = DeviceClaim(
        device_id=proof.device_id,
        public_key=proof.public_key,
        role=params.role,
        scopes=scopes,
        display_name=c.display_name,
        platform=c.platform,
        device_family=c.device_family,
        client_id=c.id,
        client_mode=c.mode,
        remote_ip=facts.remote_ip,
    )
    reason = pairing_needed(pairing.paired.get(proof.device_id), claim)
    if reason is not None:
        await _require_pairing(devices, claim, reason, facts)
    pairing.seen(proof.device_id, now, "connect", facts.remote_ip)
    token = pairing.ensure_token(proof.device_id, params.role, scopes, now)
    await devices.save()
    return Grant(auth_mode, scopes, proof, token)


async def _with_device_token(
    devices: DeviceService, facts: ConnectFacts, proof: DeviceProof, failure: AuthFailure
) -> Grant:
    params = facts.params
    auth = params.auth
    explicit = auth.device_token if auth is not None else None
    candidate = explicit or (auth.token if auth is not None else None)
    if not candidate:
        raise _unauthorized(failure, device_retry=False)
    requested = list(dict.fromkeys(params.scopes or []))
    verdict, record = devices.pairing.check_token(
        proof.device_id, params.role, candidate, requested
    )
    if verdict == "scope-mismatch":
        raise _device_token_failure(
            "unauthorized: device token scope mismatch (re-pair or approve scope upgrade)",
            "AUTH_SCOPE_MISMATCH",
        )
    if verdict != "ok" or record is None:
        if explicit:
            raise _device_token_failure(
                "unauthorized: device token mismatch (rotate/reissue device token)",
                "AUTH_DEVICE_TOKEN_MISMATCH",
            )
        retry = failure.detail_code == "AUTH_TOKEN_MISMATCH" and not (auth and auth.password)
        raise _unauthorized(failure, device_retry=retry)
    now = devices.now_ms()
    scopes = requested or list(record.scopes)
    devices.pairing.seen(proof.device_id, now, "connect", facts.remote_ip)
    token = devices.pairing.ensure_token(proof.device_id, params.role, scopes, now)
    await devices.save()
    return Grant("device-token", scopes, proof, token)


async def _require_pairing(
    devices: DeviceService, claim: DeviceClaim, reason: str, facts: ConnectFacts
) -> None:
    """Approve on the spot when allowed; otherwise leave a pending request and refuse."""
    pairing = devices.pairing
    now = devices.now_ms()
    silent = silent_approval(reason, facts)
    devices.prune()
    request, created = pairing.request(claim, reason, now, silent=silent)  # type: ignore[arg-type]
    if silent:
        pairing.approve(request.request_id, now)
        await devices.save()
        devices.resolved(request.request_id, claim.device_id, "approved")
        return
    await devices.save()
    if created:
        devices.requested(request)
    paired = pairing.paired.get(claim.device_id)
    same_key = paired is not None and paired.public_key == claim.public_key
    details: dict[str, object] = {
        "code": "PAIRING_REQUIRED",
        "reason": reason,
        "requestId": request.request_id,
        "requirement": REQUIREMENTS[reason],
        "remediationHint": f"Approve this device: smart-agent-neo devices approve {request.request_id}",
        "deviceId": claim.device_id,
        "requestedRole": claim.role,
        "requestedScopes": claim.scopes,
    }
    if paired is not None and same_key:
        details["approvedRoles"] = paired.roles
        details["approvedScopes"] = paired.scopes
    raise NotPaired(
        "pairing required",
        details=details,
        close_reason=f"pairing required (requestId: {request.request_id})",
    )
