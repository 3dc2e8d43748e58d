"""--profile and --dev isolate config, state, lock, port and service name (FAILURE-MODES 33)."""

from __future__ import annotations

from pathlib import Path

from gateway.config.paths import derived_ports, profile_default_port, resolve_paths
from gateway.lock import lock_path
from gateway.service.discovery import ProfilePort, port_collisions
from gateway.service.identity import identify


def test_profiles_share_nothing(tmp_path: Path) -> None:
    seen: dict[str, set[str]] = {
        "state": set(),
        "config": set(),
        "lock": set(),
        "unit": set(),
        "label": set(),
    }
    for profile in (None, "rescue", "dev"):
        paths = resolve_paths(profile, {}, tmp_path)
        unit = identify("systemd", "user", paths.profile, {}, tmp_path, tmp_path / "etc")
        label = identify("launchd", "user", paths.profile, {}, tmp_path, tmp_path / "etc")
        for key, value in (
            ("state", paths.state_dir),
            ("config", paths.config_path),
            ("lock", lock_path(paths)),
            ("unit", unit.path),
            ("label", label.name),
        ):
            seen[key].add(str(value))
    assert all(len(values) == 3 for values in seen.values()), seen
    assert profile_default_port("dev") == 19001
    assert profile_default_port("rescue") is None


def test_derived_ports_and_collisions() -> None:
    ports = derived_ports(18789)
    assert (ports.browser_control, ports.canvas) == (18791, 18793)
    assert (
        port_collisions(
            [ProfilePort(None, 18789, "default"), ProfilePort("dev", 19001, "profile default")]
        )
        == []
    )
    # base+2 of one profile is the other's gateway port
    clash = port_collisions([ProfilePort(None, 18789, "config"), ProfilePort("b", 18791, "config")])
    assert clash == [
        "profiles default and b collide on port 18791 (browser control of default, gateway of b), "
        "18793 (canvas of default, browser control of b)"
    ]
    crowded = port_collisions(
        [ProfilePort("a", 20000, "config"), ProfilePort("b", 20010, "config")]
    )
    assert crowded == [
        "profiles a (20000) and b (20010) are less than 20 ports apart; derived ports may clash"
    ]


def test_a_state_dir_from_the_env_is_that_profile_not_the_default(tmp_path: Path) -> None:
    """The runbook's multi-gateway example: SMART_AGENT_NEO_STATE_DIR=~/.smart-agent-neo-a
    with a config in ~/.smart-agent-neo/a.json. The CLI run that way is profile "a" for the
    port warnings: the default profile must not be reported as sharing a's port."""
    from gateway.config.paths import resolve_paths
    from gateway.service.discovery import find_profiles, port_collisions

    for name, port in (("a", 29101), ("b", 29141)):
        state = tmp_path / f".smart-agent-neo-{name}"
        state.mkdir()
        (tmp_path / ".smart-agent-neo").mkdir(exist_ok=True)
        (tmp_path / ".smart-agent-neo" / f"{name}.json").write_text(
            f'{{gateway: {{mode: "local", port: {port}}}}}'
        )
    env = {
        "SMART_AGENT_NEO_STATE_DIR": str(tmp_path / ".smart-agent-neo-a"),
        "SMART_AGENT_NEO_CONFIG_PATH": str(tmp_path / ".smart-agent-neo" / "a.json"),
        "SMART_AGENT_NEO_GATEWAY_PORT": "29101",
    }
    current = resolve_paths(None, env, tmp_path)
    found = {p.profile: p.port for p in find_profiles(tmp_path, current=current, env=env)}
    assert (found[None], found["a"]) == (18789, 29101)
    warnings = port_collisions(find_profiles(tmp_path, current=current, env=env))
    assert not [w for w in warnings if "29101" in w and "default" in w], warnings
