"""How big a run is: the full run, ``--quick``, and the tiny one the smoke test uses."""

from __future__ import annotations

import attrs


@attrs.frozen
class Plan:
    warmup: float = 0.5
    duration: float = 3.0
    repeats: int = 3  # load cases report the best repetition
    max_requests: int = 200_000
    rpc_methods: tuple[str, ...] = ("health", "status", "system-presence")
    rpc_conns: tuple[int, ...] = (1, 10, 50)
    handshake_workers: tuple[int, ...] = (1, 4, 16)
    http_conns: tuple[int, ...] = (10,)
    fanout_clients: int = 1000
    fanout_rounds: int = 10
    fanout_interval: float = 0.2
    idle_conns: tuple[int, ...] = (200, 1000)
    operator_joins: int = 200
    settle: float = 1.0
    cold_starts: int = 5
    restart_clients: int = 1
    sigterm_clients: int = 1000
    load_procs: int = 1
    # --reference CMD: the reference gateway, measured alternately with ours in the same
    # scenarios (rpc, http, handshake, fanout) and on its own for cold start and memory
    reference: str | None = None
    # channels: a burst from many chats, messages one at a time, accounts for the RSS figure
    channel_burst: int = 1000
    channel_chats: int = 50
    channel_sequential: int = 100
    channel_accounts: int = 10
    # the outbox's reliability figure (issue 13): sends while the gateway is killed
    outbox_sends: int = 200
    outbox_kills: int = 8
    outbox_interval: float = 0.1  # seconds between the sends' starts
    # hostile load (issue 16): pre-auth senders, an idle flood at the file limit, the soak
    preauth_waves: int = 4
    preauth_senders: int = 40
    preauth_bytes: int = 24 * 1024 * 1024
    flood_sockets: int = 1500
    flood_fd_limit: int = 1024
    flood_connects: int = 20
    flood_settle: float = 3.0
    big_requests: int = 20
    big_bytes: int = 19 * 1024 * 1024
    soak_seconds: float = 1800.0  # opt-in: --only soak
    soak_sample_s: float = 30.0
    soak_warmup_s: float = 300.0


FULL = Plan()
QUICK = attrs.evolve(
    FULL,
    warmup=0.3,
    duration=1.0,
    repeats=1,
    fanout_rounds=3,
    cold_starts=2,
    settle=0.5,
    channel_burst=300,
    channel_sequential=30,
)
TINY = Plan(
    warmup=0.1,
    duration=0.3,
    repeats=1,
    max_requests=50_000,  # the lean client does 10k+ req/s: the 0.3 s window must not run dry
    rpc_methods=("health",),
    rpc_conns=(2,),
    handshake_workers=(2,),
    http_conns=(2,),
    fanout_clients=5,
    fanout_rounds=2,
    fanout_interval=0.05,
    idle_conns=(3, 6),
    operator_joins=4,
    settle=0.1,
    cold_starts=1,
    sigterm_clients=5,
    channel_burst=20,
    channel_chats=5,
    channel_sequential=5,
    channel_accounts=2,
    outbox_sends=10,
    outbox_kills=1,
    outbox_interval=0.2,
    preauth_waves=1,
    preauth_senders=2,
    preauth_bytes=1024 * 1024,
    flood_sockets=20,
    flood_connects=2,
    flood_settle=0.2,
    big_requests=2,
    big_bytes=512 * 1024,
    soak_seconds=3.0,
    soak_sample_s=0.5,
    soak_warmup_s=1.0,
)
