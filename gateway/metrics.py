"""Prometheus metrics of one gateway (``GET /metrics``), names prefixed ``smart_agent_neo_``.

Each Runtime owns a private ``CollectorRegistry`` -- never prometheus-client's global one --
so several gateways in one process (tests) do not share counters. Two kinds of numbers:

* counters and histograms that code increments as things happen (``observe.py`` does it
  for requests, connections, auth failures, heartbeats; other subsystems use the same API)::

      rt.metrics.agent_runs.labels(agent="main", outcome="ok").inc()
      rt.metrics.provider_seconds.labels(provider="openai", model="gpt-x").observe(1.7)
      rt.metrics.reloads.labels(outcome="hot").inc()
      rt.metrics.restarts.inc()

* values read from the gateway's own state at scrape time (connected clients, the hub's
  event counters, uptime, readiness, the log pipeline's dropped/suppressed lines).

An in-process restart that builds a new Runtime keeps its counters by handing the old
``Metrics`` to the new Runtime (``Runtime(settings, metrics=old.metrics)``); :meth:`bind`
then carries the old hub's event counts over, so counters never go backwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from . import logs as logs_pipeline

if TYPE_CHECKING:
    from .events import Hub


def wall_ms() -> int:
    return int(time.time() * 1000)


class Observed(Protocol):
    """What the scrape reads at collection time (a Runtime; tests pass their own)."""

    @property
    def hub(self) -> Hub: ...
    @property
    def ready(self) -> bool: ...
    @property
    def draining(self) -> bool: ...
    def uptime_ms(self) -> int: ...


PREFIX = "smart_agent_neo_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# RPC latency spans a 1 ms health call and a minutes-long two-stage agent run.
REQUEST_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._http_children: dict[tuple[str, int], Any] = {}
        self.requests = Counter(
            PREFIX + "requests",
            "RPC requests by method and outcome (ok or error code)",
            ["method", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            PREFIX + "request_duration_seconds",
            "RPC request latency by method",
            ["method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            PREFIX + "http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.connections = Counter(
            PREFIX + "connections",
            "WebSocket connections that completed the handshake",
            registry=r,
        )
        self.connection_closes = Counter(
            PREFIX + "connection_closes",
            "WebSocket connections closed, by close code",
            ["code"],
            registry=r,
        )
        self.auth_failures = Counter(
            PREFIX + "auth_failures",
            "Rejected credentials by transport (ws, http) and reason",
            ["transport", "reason"],
            registry=r,
        )
        self.reloads = Counter(
            PREFIX + "config_reloads",
            "Config reloads by outcome (hot, restart, skipped, invalid)",
            ["outcome"],
            registry=r,
        )
        self.restarts = Counter(PREFIX + "restarts", "In-process restarts", registry=r)
        self.agent_runs = Counter(
            PREFIX + "agent_runs",
            "Agent runs by agent and outcome (ok, error, timeout, aborted)",
            ["agent", "outcome"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            PREFIX + "provider_request_duration_seconds",
            "Model provider latency",
            ["provider", "model"],
            buckets=PROVIDER_BUCKETS,
            registry=r,
        )
        self.heartbeats = Counter(
            PREFIX + "heartbeats", "Agent heartbeat runs by status", ["status"], registry=r
        )
        self.system_events = Counter(PREFIX + "system_events", "system-event calls", registry=r)
        # channels (CHANNELS.md 7.3); account states are read at scrape time
        self.channel_restarts = Counter(
            PREFIX + "channel_restarts",
            "Automatic restarts of channel accounts after a failure",
            ["channel", "account"],
            registry=r,
        )
        self.telegram_getupdates = Counter(
            PREFIX + "telegram_getupdates",
            "Telegram getUpdates calls by result (ok, conflict, rate_limited, error)",
            ["result"],
            registry=r,
        )
        self.inbound_messages = Counter(
            PREFIX + "inbound_messages",
            "Inbound channel updates by result (accepted, duplicate, dropped)",
            ["channel", "result"],
            registry=r,
        )
        # the durable outbox (CHANNELS.md 7.3); pending counts are read at scrape time
        self.outbox_sends = Counter(
            PREFIX + "outbox_sends",
            "Outbox part attempts by result (sent, retry, failed, ambiguous_resent)",
            ["result"],
            registry=r,
        )
        self.whatsapp_webhook_requests = Counter(
            PREFIX + "whatsapp_webhook_requests",
            "WhatsApp webhook requests by result (ok, bad_signature, verify_ok, verify_fail)",
            ["result"],
            registry=r,
        )
        self.loop_lag = Histogram(
            PREFIX + "event_loop_lag_seconds",
            "How late the event loop woke a task that asked to be woken (watchdog.py)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.loop_blocked = Counter(
            PREFIX + "event_loop_blocked",
            "Times the event loop was blocked beyond gateway.watchdog.thresholdMs",
            registry=r,
        )
        self.state = _StateCollector()
        r.register(self.state)
        ProcessCollector(registry=r)  # RSS, CPU, open fds: the soak-test numbers
        PlatformCollector(registry=r)

    def request_metrics(self, method: str, outcome: str) -> tuple[Any, Any]:
        """The ``requests`` counter and latency histogram children for one request.

        prometheus-client's ``labels()`` takes a lock and rebuilds the label tuple on every
        call; a request needs two, so the pairs are kept here (bounded: methods x outcomes).
        """
        key = (method, outcome)
        pair = self._request_children.get(key)
        if pair is None:
            pair = (
                self.requests.labels(method=method, outcome=outcome),
                self.request_seconds.labels(method=method),
            )
            self._request_children[key] = pair
        return pair

    def http_counter(self, route: str, status: int) -> Any:
        """The ``http_requests`` counter child for (route, status), kept like
        :meth:`request_metrics` keeps its children."""
        key = (route, status)
        child = self._http_children.get(key)
        if child is None:
            child = self._http_children[key] = self.http_requests.labels(
                route=route, status=str(status)
            )
        return child

    def bind(self, rt: Observed) -> None:
        """Read scrape-time values from ``rt`` (a new Runtime after an in-process restart)."""
        self.state.bind(rt)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self) -> None:
        self.rt: Observed | None = None
        self._hub: Hub | None = None
        # event counts of hubs we were bound to before (a restart replaces the hub)
        self._base = {"sent": 0, "dropped": 0, "slow_closes": 0}

    def bind(self, rt: Observed) -> None:
        if self._hub is not None and self._hub is not rt.hub:
            for key in self._base:
                self._base[key] += getattr(self._hub, key)
        self.rt, self._hub = rt, rt.hub

    def _counter(self, name: str, doc: str, value: float) -> Metric:
        return CounterMetricFamily(PREFIX + name, doc, value=value)

    def _gauge(self, name: str, doc: str, value: float) -> Metric:
        return GaugeMetricFamily(PREFIX + name, doc, value=value)

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(PREFIX + "info", "Gateway version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        rt = self.rt
        if rt is not None:
            hub = rt.hub
            yield self._gauge("connected_clients", "Clients past the handshake", len(hub.peers))
            yield self._counter(
                "events_sent", "Event frames queued to clients", self._base["sent"] + hub.sent
            )
            yield self._counter(
                "events_dropped",
                "Droppable events skipped for slow clients",
                self._base["dropped"] + hub.dropped,
            )
            yield self._counter(
                "slow_consumer_closes",
                "Clients closed 1008 for not reading",
                self._base["slow_closes"] + hub.slow_closes,
            )
            yield self._gauge(
                "uptime_seconds", "Seconds since serve() started", rt.uptime_ms() / 1000
            )
            yield self._gauge(
                "ready", "1 when started and not draining", int(rt.ready and not rt.draining)
            )
        channels = getattr(rt, "channels", None)  # a Runtime has them; test doubles may not
        if channels is not None:
            states = GaugeMetricFamily(
                PREFIX + "channel_account_state",
                "1 for the state each channel account is in",
                labels=["channel", "account", "state"],
            )
            for slot in channels.slots.values():
                states.add_metric([slot.channel, slot.account_id, slot.state], 1)
            yield states
            outbox = getattr(channels, "outbox_if_made", None)
            if outbox is not None:
                stats = outbox.stats.values()
                yield self._gauge(
                    "outbox_pending",
                    "Outbox records not yet delivered (all accounts)",
                    sum(s.pending for s in stats),
                )
                oldest = [s.oldest_pending_at for s in stats if s.oldest_pending_at is not None]
                age = max(0.0, (wall_ms() - min(oldest)) / 1000) if oldest else 0.0
                yield self._gauge(
                    "outbox_oldest_pending_age_seconds",
                    "Age of the oldest undelivered outbox record",
                    age,
                )
        pipeline = logs_pipeline.installed()
        if pipeline is not None:
            yield self._counter(
                "log_lines_suppressed",
                "Identical log lines held back by the repeat limit",
                pipeline.limiter.suppressed_total,
            )
            file = pipeline.file
            yield self._counter(
                "log_lines_dropped",
                "Log lines the file could not take (disk full, I/O error)",
                file.dropped_total if file is not None else 0,
            )
