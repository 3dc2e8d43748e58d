"""Config keys of the Control UI and the canvas host: validation, reload classes, canvas port."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.load import Loaded, parse
from gateway.config.paths import Paths
from gateway.config.reload import classify
from gateway.config.settings import Overrides, resolve
from gateway.errors import ConfigError, StartupError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(text, {})
    return raised.value.problems


def test_valid_keys_load() -> None:
    config, _ = parse(
        """{ gateway: { controlUi: { enabled: true, basePath: "/dash", root: "/srv/ui",
             allowedOrigins: ["https://ui.example.com", "http://10.0.0.2:18789", "*"],
             dangerouslyAllowHostHeaderOriginFallback: false } },
           canvasHost: { enabled: false, port: 18800, root: "~/canvas", liveReload: false } }""",
        {},
    )
    ui = config.gateway.control_ui
    assert (ui.base_path, ui.root) == ("/dash", "/srv/ui")
    assert ui.allowed_origins == ["https://ui.example.com", "http://10.0.0.2:18789", "*"]
    assert config.canvas_host.port == 18800
    assert config.canvas_host.live_reload is False


def test_bad_values_name_the_key() -> None:
    found = problems(
        """{ gateway: { controlUi: { basePath: "dash", allowedOrigins: ["ui.example.com", 3],
             enabled: "yes", alowedOrigins: [] } },
           canvasHost: { port: 70000, liveReload: 1, nope: true } }"""
    )
    assert (
        'gateway.controlUi.basePath: expected a URL path starting with "/", such as "/" or '
        '"/dashboard", got "dash"'
    ) in found
    assert (
        'gateway.controlUi.allowedOrigins[0]: expected a full origin such as "https://host" or '
        '"http://host:8080", or "*", got "ui.example.com"'
    ) in found
    assert "gateway.controlUi.allowedOrigins[1]: expected a string, got 3" in found
    assert 'gateway.controlUi.enabled: expected true or false, got "yes"' in found
    assert 'gateway.controlUi.alowedOrigins: unknown key (did you mean "allowedOrigins"?)' in found
    assert "canvasHost.port: expected an integer 1-65535, got 70000" in found
    assert "canvasHost.liveReload: expected true or false, got 1" in found
    assert "canvasHost.nope: unknown key" in found


def test_reload_classes() -> None:
    assert classify("gateway.controlUi.allowedOrigins") == "hot"
    assert classify("gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback") == "hot"
    assert classify("gateway.controlUi.basePath") == "restart"
    assert classify("gateway.controlUi.enabled") == "restart"
    assert classify("canvasHost.port") == "restart"


@pytest.mark.parametrize(
    ("config", "env", "port", "expected"),
    [
        ("{}", {}, 18789, 18793),
        ("{}", {}, 19001, 19005),
        ("{}", {}, 0, 0),  # a gateway on any free port: the canvas too
        ("{ canvasHost: { port: 20000 } }", {}, 18789, 20000),
        (
            "{ canvasHost: { port: 20000 } }",
            {"SMART_AGENT_NEO_CANVAS_HOST_PORT": "20001"},
            1,
            20001,
        ),
        ("{ canvasHost: { enabled: false } }", {}, 18789, None),
        ("{}", {"SMART_AGENT_NEO_SKIP_CANVAS_HOST": "1"}, 18789, None),
        ("{}", {"SMART_AGENT_NEO_SKIP_CANVAS_HOST": "yes"}, 18789, None),
        ("{}", {"SMART_AGENT_NEO_SKIP_CANVAS_HOST": "0"}, 18789, 18793),
    ],
)
def test_canvas_port(
    tmp_path: Path, config: str, env: dict[str, str], port: int, expected: int | None
) -> None:
    paths = Paths(None, tmp_path, tmp_path / "c.json")
    loaded = Loaded(parse(config, {})[0], paths.config_path, True)
    settings = resolve(loaded, paths, Overrides(port=port), env, lambda: "t")
    assert settings.canvas_port == expected


def test_bad_canvas_port_env(tmp_path: Path) -> None:
    paths = Paths(None, tmp_path, tmp_path / "c.json")
    loaded = Loaded(parse("{}", {})[0], paths.config_path, True)
    with pytest.raises(StartupError, match="SMART_AGENT_NEO_CANVAS_HOST_PORT: expected an integer"):
        resolve(loaded, paths, Overrides(), {"SMART_AGENT_NEO_CANVAS_HOST_PORT": "x"}, lambda: "t")
