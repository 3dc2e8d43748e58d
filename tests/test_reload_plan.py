"""plan_reload: every row of the classification table (FAILURE-MODES 13), the decision per
reload mode, and hot-mode merging."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from gateway.config.model import Config, RateLimit
from gateway.config.reload import RULES, changed_paths, classify, merge_paths, plan_reload


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("gateway.port", "restart"),
        ("gateway.bind", "restart"),
        ("gateway.customBindHost", "restart"),
        ("gateway.auth.token", "restart"),
        ("gateway.auth.mode", "restart"),
        ("gateway.auth.password", "restart"),
        ("gateway.auth.rateLimit.maxAttempts", "hot"),
        ("gateway.ws.tickIntervalMs", "hot"),
        ("gateway.ws.maxBufferedBytes", "hot"),
        ("gateway.ws.handshakeTimeoutMs", "hot"),
        ("gateway.ws.closeGraceMs", "hot"),
        ("gateway.ws.maxPayload", "restart"),
        ("gateway.ws.pingIntervalMs", "restart"),
        ("gateway.health.refreshIntervalMs", "hot"),
        ("gateway.shutdownTimeoutMs", "hot"),
        ("gateway.drainTimeoutMs", "hot"),
        ("gateway.http.endpoints.chatCompletions.enabled", "hot"),
        ("gateway.tools.deny", "hot"),
        ("gateway.metrics.allowLoopbackWithoutAuth", "hot"),
        ("gateway.remote.url", "none"),
        ("gateway.reload.mode", "none"),
        ("gateway.reload.debounceMs", "none"),
        ("gateway.mode", "none"),
        ("commands.restart", "hot"),
        ("logging.level", "hot"),
        ("agents.defaults.model.primary", "hot"),
        ("models.providers.x.baseUrl", "hot"),
        ("gateway.somethingNew", "restart"),
        ("brandNewSection.key", "restart"),
    ],
)
def test_classification_table(path: str, action: str) -> None:
    assert classify(path) == action


def test_every_rule_is_reachable() -> None:
    for prefix, action in RULES:
        assert classify(prefix) == action, prefix


def test_prefix_must_match_a_whole_segment() -> None:
    assert classify("gateway.healthX") == "restart"  # not "gateway.health"
    assert classify("gateway.ws.tickIntervalMsExtra") == "restart"


def _with(config: Config, **gateway: Any) -> Config:
    return attrs.evolve(config, gateway=attrs.evolve(config.gateway, **gateway))


def test_changed_paths_lists_leaves_in_camel_case() -> None:
    old = Config()
    new = _with(old, port=19000, ws=attrs.evolve(old.gateway.ws, tick_interval_ms=5000))
    assert sorted(changed_paths(old, new)) == ["gateway.port", "gateway.ws.tickIntervalMs"]
    assert list(changed_paths(old, old)) == []


@pytest.mark.parametrize(
    ("mode", "hot_only", "expected"),
    [
        ("hybrid", True, "hot"),
        ("hybrid", False, "restart"),
        ("hot", True, "hot"),
        ("hot", False, "hot"),
        ("restart", True, "restart"),
        ("restart", False, "restart"),
        ("off", True, "ignore"),
        ("off", False, "ignore"),
    ],
)
def test_decision_per_mode(mode: Any, hot_only: bool, expected: str) -> None:
    base = _with(Config(), reload=attrs.evolve(Config().gateway.reload, mode=mode))
    new = _with(base, ws=attrs.evolve(base.gateway.ws, tick_interval_ms=1000))
    if not hot_only:
        new = _with(new, port=19000)
    assert plan_reload(base, new).decision == expected


def test_no_change_means_nothing() -> None:
    assert plan_reload(Config(), Config()).decision == "nothing"


def test_the_new_files_mode_decides() -> None:
    old = Config()
    new = _with(old, reload=attrs.evolve(old.gateway.reload, mode="off"), port=19000)
    assert plan_reload(old, new).decision == "ignore"


def test_hot_mode_merge_takes_only_hot_paths() -> None:
    old = Config()
    new = _with(
        old,
        port=19000,
        auth=attrs.evolve(old.gateway.auth, rate_limit=RateLimit(max_attempts=3)),
    )
    plan = plan_reload(old, new)
    assert plan.needs_restart == ["gateway.port"]
    assert plan.hot == ["gateway.auth.rateLimit.maxAttempts"]
    merged = merge_paths(old, new, plan.hot)
    assert merged.gateway.port == old.gateway.port
    assert merged.gateway.auth.rate_limit.max_attempts == 3
