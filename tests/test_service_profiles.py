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
