"""Who gets in: the checks before the WebSocket upgrade and inside ``connect``, and hello-ok.

The connection machine (``protocol/connection.py``) decides everything that follows from
the frames alone; what needs the gateway's state is decided here, as a chain of checks the
session driver runs between the machine's ``Authenticate`` and ``accept``/``reject``:

* ``Runtime.upgrade_checks`` -- ``(rt, upgrade) -> GatewayError | None``, before the
  upgrade is accepted; a refusal is answered as plain HTTP with the error's status (a
  browser ``Origin`` not allowed: 403; too many sockets from one address: 503).
* ``Runtime.connect_checks`` -- ``async (rt, attempt) -> None``, in order, inside
  ``connect``; a check refuses by raising a ``GatewayError`` (its ``shape()`` is the ``res``
  error, its ``close_code``/``close_reason`` the close) and may narrow ``attempt.role`` /
  ``attempt.scopes`` or fill in what hello-ok says. serve() installs
  :func:`default_connect_checks`: the failed-auth limiter, the shared secret, the device
  identity (``devices/connect.py``: proof, device-token sign-in, pairing, the token for
  hello-ok), and last a fail-closed check that no deferred secret failure is left; an
  origin check goes before them.

A wrong or missing shared secret is refused at once -- unless the connect carries a device
block, whose token may stand in for the secret: then the failure waits on
``attempt.secret_failure`` for the device check to settle it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from .. import __version__, observe
from ..agent.agents import default_agent_id
from ..agent.keys import MAIN_KEY
from ..auth import AuthFailure, check_secret, granted_scopes, rate_limited_error
from ..devices import connect as device_connect
from ..devices.identity import DeviceProof
from ..errors import GatewayError
from ..events import Peer
from ..origins import is_loopback_ip
from ..presence import UNTRACKED_MODES
from ..protocol import events as ev
from ..protocol.codec import dumps, to_wire
from ..protocol.devices import DeviceTokenRecord
from ..protocol.frames import PROTOCOL_VERSION, StateVersion
from ..protocol.handshake import (
    ConnectParams,
    Features,
    HelloAuth,
    HelloOk,
    Policy,
    ServerInfo,
    SessionDefaultsInfo,
    Snapshot,
)
from ..protocol.system import PresenceEntry
from ..protocol.upgrade import Upgrade
from ..rpc.registry import methods
from ..runtime import Runtime

if TYPE_CHECKING:
    from ..config.settings import Settings


@attrs.define(eq=False)
class ConnectAttempt:
    """One ``connect`` being decided: what the client sent and where from, and what the
    checks have granted so far."""

    params: ConnectParams
    upgrade: Upgrade
    nonce: str  # this connection's challenge nonce (a signed device identity includes it)
    conn_id: str
    now_ms: int
    role: str
    scopes: list[str]
    # a wrong/missing shared secret that a device token may still make good (check_device)
    secret_failure: AuthFailure | None = None
    auth_method: str | None = None  # token | password | none | device-token
    device: DeviceProof | None = None  # the verified device identity
    device_token: DeviceTokenRecord | None = None  # for hello-ok.auth.deviceToken

    @property
    def ip(self) -> str | None:
        return self.upgrade.client_ip

    @property
    def limiter_key(self) -> str | None:
        """The failed-auth bucket: the client (behind any trusted proxy), and for a browser
        the client and its ``Origin``."""
        origin = self.upgrade.origin
        return f"{self.ip or '?'} origin {origin}" if origin else self.ip

    @property
    def limiter_local(self) -> bool:
        """Loopback-exempt: only local direct (clientip.py), never a browser page, since a
        hostile page runs on the user's own machine (CONTROL-UI.md 3), and never a client
        behind a reverse proxy (FAILURE-MODES 21)."""
        return self.upgrade.local_direct and not self.upgrade.origin

    def refuse_secret(self, rt: Runtime, failure: AuthFailure) -> GatewayError:
        """Count a wrong secret toward the limiter, record it, and return the refusal."""
        if failure.counts:
            rt.limiter.record_failure(self.limiter_key, self.now_ms, local=self.limiter_local)
        client = self.params.client.id
        observe.auth_failed(rt, "ws", self.ip, failure.detail_code, client=client)
        return failure.error()


UpgradeCheck = Callable[[Runtime, Upgrade], GatewayError | None]
ConnectCheck = Callable[[Runtime, ConnectAttempt], Awaitable[None]]


async def check_rate_limit(rt: Runtime, attempt: ConnectAttempt) -> None:
    """An address locked out by failed attempts is refused before its secret is looked at."""
    wait_ms = rt.limiter.retry_after_ms(
        attempt.limiter_key, attempt.now_ms, local=attempt.limiter_local
    )
    if wait_ms is not None:
        client = attempt.params.client.id
        observe.auth_failed(rt, "ws", attempt.ip, "AUTH_RATE_LIMITED", client=client)
        raise rate_limited_error(wait_ms)


async def check_shared_secret(rt: Runtime, attempt: ConnectAttempt) -> None:
    """PROTOCOL.md 3.5 step 5: the configured token or password (constant-time)."""
    params = attempt.params
    failure = check_secret(rt.settings.auth, params.auth, params.client.id, params.client.mode)
    if failure is not None:
        if params.device is not None:
            attempt.secret_failure = failure  # check_device may accept the device token
            return
        raise attempt.refuse_secret(rt, failure)
    rt.limiter.record_success(attempt.limiter_key)
    attempt.auth_method = rt.settings.auth.mode


async def check_device(rt: Runtime, attempt: ConnectAttempt) -> None:
    """PROTOCOL.md 3.5 steps 5-7 and 11 for a connect with a ``device`` block."""
    if attempt.params.device is None:
        return
    upgrade = attempt.upgrade
    facts = device_connect.ConnectFacts(
        attempt.params,
        attempt.nonce,
        attempt.ip,
        local_direct=upgrade.local_direct,
        browser_origin=upgrade.origin is not None,
    )
    failure = attempt.secret_failure
    try:
        grant = await device_connect.admit(
            rt.devices, facts, failure, rt.settings.auth.mode, attempt.scopes
        )
    except GatewayError:
        if failure is not None:  # the wrong secret counts, whatever else was wrong
            attempt.refuse_secret(rt, failure)
        raise
    if failure is not None:
        rt.limiter.record_success(attempt.limiter_key)
    attempt.secret_failure = None
    attempt.auth_method = grant.auth_method
    attempt.scopes = grant.scopes
    attempt.device = grant.proof
    attempt.device_token = grant.token


async def check_secret_settled(rt: Runtime, attempt: ConnectAttempt) -> None:
    """Fail closed: a secret failure nobody settled is refused here."""
    if attempt.secret_failure is not None:
        raise attempt.refuse_secret(rt, attempt.secret_failure)


def default_connect_checks() -> list[ConnectCheck]:
    return [check_rate_limit, check_shared_secret, check_device, check_secret_settled]


async def node_connected(rt: Runtime, peer: Peer, attempt: ConnectAttempt) -> None:
    """A node was let in: give it the wake words, register it with the relay and settle
    its node pairing."""
    rt.voicewake.push(peer)  # PROTOCOL.md 3.9: the current triggers, targeted
    await rt.nodes.connected(
        peer,
        attempt.params,
        device_id=attempt.device.device_id if attempt.device else None,
        local_direct=attempt.upgrade.local_direct,
    )


def upgrade_refusal(rt: Runtime, upgrade: Upgrade) -> GatewayError | None:
    """The first refusal among ``rt.upgrade_checks``, if any."""
    for check in rt.upgrade_checks:
        error = check(rt, upgrade)
        if error is not None:
            return error
    return None


async def decide(rt: Runtime, attempt: ConnectAttempt) -> None:
    """Run ``rt.connect_checks`` in order; the first refusal raises."""
    for check in rt.connect_checks:
        await check(rt, attempt)


NO_CAPS: frozenset[str] = frozenset()  # shared: most clients advertise none


def admitted(rt: Runtime, peer: Peer, attempt: ConnectAttempt) -> bool:
    """The checks said yes: the peer takes the identity the connect gave it, and a client
    presence tracks gets its entry. Returns whether presence tracks it."""
    params = attempt.params
    peer.client_id = params.client.id
    peer.client_mode = params.client.mode
    peer.caps = frozenset(params.caps) if params.caps else NO_CAPS
    peer.device_id = attempt.device.device_id if attempt.device else None
    peer.auth_method = attempt.auth_method
    if params.client.mode in UNTRACKED_MODES:
        return False
    device = params.device.id if params.device else None
    peer.presence_key = device or params.client.instance_id or peer.conn_id
    rt.presence.upsert(peer.presence_key, _presence_entry(rt, peer, params, attempt.scopes))
    return True


def _presence_entry(
    rt: Runtime, peer: Peer, params: ConnectParams, scopes: list[str]
) -> PresenceEntry:
    c = params.client
    ip = peer.remote_ip
    device = params.device.id if params.device else None
    return PresenceEntry(
        ts=rt.now_ms(),
        host=c.display_name or c.id,
        ip=None if is_loopback_ip(ip) else ip,
        version=c.version,
        platform=c.platform,
        device_family=c.device_family,
        model_identifier=c.model_identifier,
        mode=c.mode,
        reason="connect",
        device_id=device,
        roles=[params.role],
        scopes=scopes,
        instance_id=device or c.instance_id,
    )


def attempt_for(rt: Runtime, peer: Peer, params: ConnectParams, nonce: str) -> ConnectAttempt:
    return ConnectAttempt(
        params=params,
        upgrade=peer.upgrade,
        nonce=nonce,
        conn_id=peer.conn_id,
        now_ms=rt.now_ms(),
        role=params.role,
        scopes=granted_scopes(params.role, params.scopes),
    )


def hello_ok(rt: Runtime, peer: Peer, attempt: ConnectAttempt) -> str:
    """The hello-ok payload as JSON text (PROTOCOL.md 3.8): the text of
    ``dumps(to_wire(hello_ok_model(...)))`` (a test holds the two equal), spliced from
    pieces encoded once -- what follows from the settings alone (features, session
    defaults, paths, policy) once per settings object, the presence listing once per
    (presence version, millisecond), the health snapshot once per stored snapshot. Per
    connection only the ids, ``stateVersion``, ``uptimeMs`` and the auth block are encoded."""
    fixed = _fixed_pieces(rt.settings)
    health = rt.health.snapshot
    now_ms = rt.now_ms()
    return "".join(
        (
            fixed.server,
            dumps(peer.conn_id),
            fixed.features,
            rt.presence.encoded(now_ms).text,
            ',"health":',
            rt.health.encoded(health).text if health is not None else "{}",
            f',"stateVersion":{{"presence":{rt.presence.version:d},'
            f'"health":{rt.health.version:d}}},"uptimeMs":{rt.uptime_ms():d}',
            fixed.snapshot_tail,
            _hello_auth_text(attempt),
            fixed.policy,
        )
    )


def hello_ok_model(
    rt: Runtime, peer: Peer, attempt: ConnectAttempt, now_ms: int, uptime_ms: int
) -> HelloOk:
    """hello-ok as the wire model (what :func:`hello_ok` encodes, piece by piece)."""
    settings = rt.settings
    ws = settings.config.gateway.ws
    health = rt.health.snapshot
    agent_id = default_agent_id(settings.config)
    return HelloOk(
        type="hello-ok",
        protocol=PROTOCOL_VERSION,
        server=ServerInfo(__version__, peer.conn_id),
        features=Features(_method_names(), _event_names()),
        snapshot=Snapshot(
            presence=rt.presence.listing(now_ms),
            health=health if health is not None else {},
            state_version=rt.state_version(),
            uptime_ms=uptime_ms,
            session_defaults=SessionDefaultsInfo(
                agent_id, MAIN_KEY, f"agent:{agent_id}:{MAIN_KEY}", "per-sender"
            ),
            auth_mode=settings.auth.mode,
            config_path=str(settings.paths.config_path),
            state_dir=str(settings.paths.state_dir),
        ),
        auth=_hello_auth(attempt),
        policy=Policy(ws.max_payload, ws.max_buffered_bytes, ws.tick_interval_ms),
    )


@attrs.frozen
class _Pieces:
    """The parts of hello-ok's text that follow from the settings alone."""

    server: str  # ... "server":{"version":V,"connId":   (the conn id follows)
    features: str  # }, "features":{...}, "snapshot":{"presence":   (the listing follows)
    snapshot_tail: str  # ,"sessionDefaults":...,"stateDir":"..."},"auth":
    policy: str  # ,"policy":{...}}


_pieces: tuple[Settings, _Pieces] | None = None


def _fixed_pieces(settings: Settings) -> _Pieces:
    """The settings-only parts of hello-ok, made once per settings object (a reload
    replaces it). Cut out of a model encoded with placeholders, so they are exactly the
    model's encoding."""
    global _pieces
    if _pieces is not None and _pieces[0] is settings:
        return _pieces[1]
    ws = settings.config.gateway.ws
    agent_id = default_agent_id(settings.config)
    wire = to_wire(
        Snapshot(
            presence=[],
            health={},
            state_version=StateVersion(0, 0),
            uptime_ms=0,
            session_defaults=SessionDefaultsInfo(
                agent_id, MAIN_KEY, f"agent:{agent_id}:{MAIN_KEY}", "per-sender"
            ),
            auth_mode=settings.auth.mode,
            config_path=str(settings.paths.config_path),
            state_dir=str(settings.paths.state_dir),
        )
    )
    assert isinstance(wire, dict)
    per_connection = ("presence", "health", "stateVersion", "uptimeMs")
    assert list(wire)[:4] == list(per_connection)  # the field order the pieces assume
    tail = "".join(f",{dumps(k)}:{dumps(v)}" for k, v in wire.items() if k not in per_connection)
    policy = to_wire(Policy(ws.max_payload, ws.max_buffered_bytes, ws.tick_interval_ms))
    features = to_wire(Features(_method_names(), _event_names()))
    made = _Pieces(
        server=f'{{"type":"hello-ok","protocol":{PROTOCOL_VERSION:d},'
        f'"server":{{"version":{dumps(__version__)},"connId":',
        features='},"features":' + dumps(features) + ',"snapshot":{"presence":',
        snapshot_tail=tail + '},"auth":',
        policy=',"policy":' + dumps(policy) + "}",
    )
    _pieces = (settings, made)
    return made


def _hello_auth_text(attempt: ConnectAttempt) -> str:
    if attempt.device_token is None:  # the common case, without the converter
        return dumps({"role": attempt.role, "scopes": attempt.scopes})
    return dumps(to_wire(_hello_auth(attempt)))


def _hello_auth(attempt: ConnectAttempt) -> HelloAuth:
    token = attempt.device_token
    if token is None:
        return HelloAuth(attempt.role, attempt.scopes)
    issued = token.rotated_at_ms or token.created_at_ms
    return HelloAuth(attempt.role, attempt.scopes, token.token, issued)


@functools.cache
def _method_names() -> list[str]:
    return sorted(methods())


@functools.cache
def _event_names() -> list[str]:
    return sorted(ev.EVENTS)
