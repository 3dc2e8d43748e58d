"""``GET /metrics``: Prometheus text parsed with prometheus-client's own parser, Bearer auth,
and counters that move as the gateway is used."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from gateway_client import GatewayConnectError, GatewayRpcError, open_client
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__, observe
from gateway.app import Running
from gateway.config.model import Config, Gateway, MetricsEndpoint, RateLimit

from .conftest import TOKEN, StartGateway, make_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _http(running: Running) -> str:
    return running.url.replace("ws://", "http://")


async def scrape(running: Running) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    async with httpx.AsyncClient() as web:
        res = await web.get(_http(running) + "/metrics", headers=AUTH)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(res.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(
    samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_move_as_requests_are_made(start_gateway: StartGateway) -> None:
    running = await start_gateway()
    before = await scrape(running)
    assert all(name.startswith(("smart_agent_neo_", "process_", "python_")) for name, _ in before)
    assert value(before, "smart_agent_neo_info", version=__version__) == 1
    # a scrape reads the channels' outbox only if something made it: none here, so no
    # SQLite store is opened (and no outbox gauges) in a gateway that never used a channel
    assert running.runtime.channels.outbox_if_made is None
    assert not any(name.startswith("smart_agent_neo_outbox_pending") for name, _ in before)
    async with open_client(running.url, token=TOKEN, client_mode="test") as client:
        for _ in range(3):
            await client.call("health")
        await client.call("system-event", {"text": "hello"})
        with pytest.raises(GatewayRpcError):
            await client.call("no.such.method")
        with pytest.raises(GatewayRpcError):
            await client.call("system-event", {"text": ""})
        during = await scrape(running)
    with pytest.raises(GatewayConnectError):
        async with open_client(running.url, token="wrong-token-0000"):
            pass
    with trio.fail_after(5):
        await running.runtime.hub.wait_empty()
    after = await scrape(running)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("smart_agent_neo_requests_total", method="health", outcome="ok") == 3
    assert moved("smart_agent_neo_requests_total", method="system-event", outcome="ok") == 1
    assert (
        moved("smart_agent_neo_requests_total", method="system-event", outcome="INVALID_REQUEST")
        == 1
    )
    # a client-chosen method name never becomes a label of its own
    assert moved("smart_agent_neo_requests_total", method="unknown", outcome="INVALID_REQUEST") == 1
    assert moved("smart_agent_neo_request_duration_seconds_count", method="health") == 3
    assert (
        value(after, "smart_agent_neo_request_duration_seconds_bucket", method="health", le="+Inf")
        >= 3
    )
    assert (
        moved("smart_agent_neo_auth_failures_total", transport="ws", reason="AUTH_TOKEN_MISMATCH")
        == 1
    )
    assert moved("smart_agent_neo_connections_total") == 1
    assert moved("smart_agent_neo_connection_closes_total", code="client") == 1
    assert moved("smart_agent_neo_system_events_total") == 1
    assert moved("smart_agent_neo_events_sent_total") >= 2  # presence on connect and on the event
    assert value(during, "smart_agent_neo_connected_clients") == 1
    assert value(after, "smart_agent_neo_connected_clients") == 0
    assert value(after, "smart_agent_neo_ready") == 1
    assert moved("smart_agent_neo_http_requests_total", route="/metrics", status="200") >= 1
    for name in (
        "smart_agent_neo_events_dropped_total",
        "smart_agent_neo_slow_consumer_closes_total",
        "smart_agent_neo_uptime_seconds",
        "process_resident_memory_bytes",
    ):
        assert any(n == name for n, _ in after), name


async def test_subsystem_counters_exposed_for_reloads_restarts_runs_providers(
    start_gateway: StartGateway,
) -> None:
    """The API other subsystems call (config reload, restart, agent runs, providers)."""
    running = await start_gateway()
    rt = running.runtime
    observe.config_reloaded(rt, "hot", ["logging.level"])
    observe.config_reloaded(rt, "invalid")
    observe.restarting(rt, "config change")
    observe.agent_run(rt, "main", "ok", 1.2, run_id="r1")
    observe.agent_run(rt, "main", "timeout", 600)
    observe.provider_call(rt, "local", "echo-1", 0.3)
    rt.metrics.agent_runs.labels(agent="ops", outcome="error").inc()
    samples = await scrape(running)
    assert value(samples, "smart_agent_neo_config_reloads_total", outcome="hot") == 1
    assert value(samples, "smart_agent_neo_config_reloads_total", outcome="invalid") == 1
    assert value(samples, "smart_agent_neo_restarts_total") == 1
    assert value(samples, "smart_agent_neo_agent_runs_total", agent="main", outcome="ok") == 1
    assert value(samples, "smart_agent_neo_agent_runs_total", agent="main", outcome="timeout") == 1
    assert value(samples, "smart_agent_neo_agent_runs_total", agent="ops", outcome="error") == 1
    assert (
        value(
            samples,
            "smart_agent_neo_provider_request_duration_seconds_count",
            provider="local",
            model="echo-1",
        )
        == 1
    )
    assert (
        value(
            samples,
            "smart_agent_neo_provider_request_duration_seconds_bucket",
            provider="local",
            model="echo-1",
            le="0.5",
        )
        == 1
    )


async def test_two_gateways_in_one_process_keep_their_own_counters(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    a = await start_gateway(make_settings(tmp_path / "a"))
    b = await start_gateway(make_settings(tmp_path / "b"))
    async with open_client(a.url, token=TOKEN) as client:
        await client.call("health")
    sa, sb = await scrape(a), await scrape(b)
    assert value(sa, "smart_agent_neo_requests_total", method="health", outcome="ok") == 1
    assert value(sb, "smart_agent_neo_requests_total", method="health", outcome="ok") == 0


async def test_metrics_require_the_bearer_secret(start_gateway: StartGateway) -> None:
    running = await start_gateway()
    url = _http(running) + "/metrics"
    async with httpx.AsyncClient() as web:
        missing = await web.get(url)
        wrong = await web.get(url, headers={"Authorization": "Bearer nope-nope"})
        basic = await web.get(url, headers={"Authorization": f"Basic {TOKEN}"})
        head = await web.head(url, headers=AUTH)
        post = await web.post(url, headers=AUTH)
    assert missing.status_code == wrong.status_code == basic.status_code == 401
    assert missing.json() == {"error": {"message": "Unauthorized", "type": "unauthorized"}}
    assert (head.status_code, head.content) == (200, b"")
    assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
    samples = await scrape(running)
    assert (
        value(
            samples,
            "smart_agent_neo_auth_failures_total",
            transport="http",
            reason="AUTH_BEARER_MISSING",
        )
        == 1
    )
    assert (
        value(
            samples,
            "smart_agent_neo_auth_failures_total",
            transport="http",
            reason="AUTH_BEARER_MISMATCH",
        )
        == 2
    )


async def test_loopback_without_auth_only_when_configured_and_direct(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """FAILURE-MODES.md item 21: a request relayed by a local proxy is not "local"."""
    config = Config(gateway=Gateway(metrics=MetricsEndpoint(allow_loopback_without_auth=True)))
    running = await start_gateway(make_settings(tmp_path, config=config))
    url = _http(running) + "/metrics"
    async with httpx.AsyncClient() as web:
        direct = await web.get(url)
        proxied = await web.get(url, headers={"X-Forwarded-For": "203.0.113.9"})
        forwarded = await web.get(url, headers={"Forwarded": "for=203.0.113.9"})
    assert direct.status_code == 200
    assert "smart_agent_neo_connected_clients" in direct.text
    assert proxied.status_code == forwarded.status_code == 401


async def test_disabled_metrics_are_not_found(start_gateway: StartGateway, tmp_path: Path) -> None:
    config = Config(gateway=Gateway(metrics=MetricsEndpoint(enabled=False)))
    running = await start_gateway(make_settings(tmp_path, config=config))
    async with httpx.AsyncClient() as web:
        res = await web.get(_http(running) + "/metrics", headers=AUTH)
    assert res.status_code == 404


async def test_wrong_bearers_lock_the_client_out_with_retry_after(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    """The same failed-attempt limiter as the control plane (OPERATIONS.md B.4)."""
    limits = RateLimit(max_attempts=3, window_ms=60_000, lockout_ms=120_000, exempt_loopback=False)
    config = Config()
    config = attrs.evolve(
        config,
        gateway=attrs.evolve(
            config.gateway, auth=attrs.evolve(config.gateway.auth, rate_limit=limits)
        ),
    )
    running = await start_gateway(make_settings(tmp_path, config=config))
    url = _http(running) + "/metrics"
    async with httpx.AsyncClient() as web:
        codes = [
            (await web.get(url, headers={"Authorization": "Bearer bad"})).status_code
            for _ in range(3)
        ]
        locked = await web.get(url, headers=AUTH)  # even the right secret waits out the lockout
    assert codes == [401, 401, 401]
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 120
    assert locked.json()["error"]["type"] == "rate_limited"


async def test_a_real_agent_run_moves_the_run_counter(start_gateway: StartGateway) -> None:
    """The agent subsystem reports through observe: one offline run -> one counted run."""
    running = await start_gateway()
    async with open_client(running.url, token=TOKEN) as client:
        final = await client.call(
            "agent", {"message": "count me", "idempotencyKey": "metrics-run-1"}, expect_final=True
        )
    assert final["status"] == "ok"
    samples = await scrape(running)
    assert value(samples, "smart_agent_neo_agent_runs_total", agent="main", outcome="ok") == 1


async def test_a_config_reload_and_restart_are_counted(tmp_path: Path) -> None:
    """The lifecycle reports reloads and in-process restarts through observe."""
    from .test_supervisor import supervised

    async with supervised(tmp_path) as (lc, config):
        first = await lc.wait_started(1)
        config.write(
            {"port": first.port, "reload": {"debounceMs": 50}, "ws": {"tickIntervalMs": 2222}}
        )
        with trio.fail_after(10):
            await lc.wait_checked(1)
        lc.request_restart("counted")
        with trio.fail_after(10):
            second = await lc.wait_started(2)
        samples = await scrape(second)
    assert value(samples, "smart_agent_neo_config_reloads_total", outcome="hot") == 1
    assert value(samples, "smart_agent_neo_restarts_total") == 1
