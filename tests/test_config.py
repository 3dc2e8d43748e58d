"""Config file loading and strict validation (OPERATIONS.md C.1-C.3): pure, no sockets."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from gateway.config.load import Loaded, load_file, parse, substitute_env
from gateway.config.model import DEFAULT_PORT, Config, RateLimit
from gateway.errors import EX_CONFIG, ConfigError, GatewayError


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, env or {})
    return info.value.problems


def single_problem(text: str) -> str:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# -- defaults and JSON5 ---------------------------------------------------------------------


def test_empty_object_is_all_defaults() -> None:
    config, warnings = parse("{}", {})
    assert config == Config()
    assert warnings == []
    gw = config.gateway
    assert gw.port == DEFAULT_PORT == 18789
    assert gw.bind == "loopback"
    assert gw.mode is None
    assert gw.reload.mode == "hybrid"
    assert gw.reload.debounce_ms == 300
    assert gw.ws.tick_interval_ms == 30_000
    assert gw.auth.rate_limit == RateLimit(
        max_attempts=10, window_ms=60_000, lockout_ms=300_000, exempt_loopback=True
    )
    assert config.commands.restart is True
    assert config.logging.level == "info"


def test_json5_comments_trailing_commas_unquoted_keys() -> None:
    text = """
    // line comment
    {
      /* block
         comment */
      gateway: {
        mode: 'local',          // single quotes too
        port: 19000,
        bind: "lan",
        auth: { token: "abc", rateLimit: { maxAttempts: 3, }, },
      },
    }
    """
    config, _ = parse(text, {})
    assert config.gateway.mode == "local"
    assert config.gateway.port == 19000
    assert config.gateway.bind == "lan"
    assert config.gateway.auth.token == "abc"
    assert config.gateway.auth.rate_limit.max_attempts == 3
    # untouched siblings keep their defaults
    assert config.gateway.auth.rate_limit.window_ms == 60_000
    assert config.gateway.reload.mode == "hybrid"


def test_camel_case_keys_map_onto_nested_fields() -> None:
    text = """{
      gateway: {
        customBindHost: "10.0.0.5",
        shutdownTimeoutMs: 2000,
        reload: { mode: "hot", debounceMs: 0 },
        ws: { tickIntervalMs: 1000, maxBufferedBytes: 65536 },
        auth: { mode: "password", password: "pw", rateLimit: { exemptLoopback: false } },
      },
      commands: { restart: false },
      logging: { level: "debug", file: "/tmp/x.log" },
    }"""
    config, _ = parse(text, {})
    gw = config.gateway
    assert gw.custom_bind_host == "10.0.0.5"
    assert gw.shutdown_timeout_ms == 2000
    assert (gw.reload.mode, gw.reload.debounce_ms) == ("hot", 0)
    assert gw.ws.tick_interval_ms == 1000
    assert gw.ws.max_buffered_bytes == 65536
    assert gw.auth.mode == "password"
    assert gw.auth.password == "pw"
    assert gw.auth.rate_limit.exempt_loopback is False
    assert config.commands.restart is False
    assert config.logging.level == "debug"
    assert config.logging.file == "/tmp/x.log"


def test_schema_root_key_is_tolerated() -> None:
    config, _ = parse('{"$schema": "./protocol.schema.json", gateway: {mode: "local"}}', {})
    assert config.gateway.mode == "local"


def test_schema_key_is_only_tolerated_at_the_root() -> None:
    problem = single_problem('{gateway: {"$schema": "x"}}')
    assert problem.startswith("gateway.$schema: unknown key")


# -- one-line problems with key path and bad value ------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ('"abc"', '"abc"'),
        ("0", "0"),
        ("70000", "70000"),
        ("true", "true"),
        ("-1", "-1"),
        ("1.5", "1.5"),
    ],
)
def test_bad_port_names_path_range_and_value(raw: str, shown: str) -> None:
    problem = single_problem(f"{{gateway: {{port: {raw}}}}}")
    assert problem == f"gateway.port: expected an integer 1-65535, got {shown}"


def test_port_boundaries_are_accepted() -> None:
    assert parse("{gateway: {port: 1}}", {})[0].gateway.port == 1
    assert parse("{gateway: {port: 65535}}", {})[0].gateway.port == 65535


def test_bad_bind_lists_the_choices() -> None:
    problem = single_problem('{gateway: {bind: "wifi"}}')
    assert problem.startswith("gateway.bind: ")
    assert '"wifi"' in problem
    for choice in ("loopback", "lan", "tailnet", "auto", "custom"):
        assert f'"{choice}"' in problem
    assert (
        problem
        == 'gateway.bind: expected one of "loopback", "lan", "tailnet", "auto", "custom", got "wifi"'
    )


def test_unknown_key_suggests_the_close_match() -> None:
    assert (
        single_problem("{gateway: {prot: 1}}") == 'gateway.prot: unknown key (did you mean "port"?)'
    )


def test_unknown_key_without_a_close_match_has_no_hint() -> None:
    assert single_problem("{gateway: {zzzzzz: 1}}") == "gateway.zzzzzz: unknown key"


def test_unknown_key_at_the_root() -> None:
    assert (
        single_problem("{gateway: {}, gatway: {}}")
        == 'gatway: unknown key (did you mean "gateway"?)'
    )


def test_nested_unknown_key_has_the_full_path() -> None:
    problem = single_problem("{gateway: {auth: {rateLimit: {maxAtempts: 3}}}}")
    assert problem == 'gateway.auth.rateLimit.maxAtempts: unknown key (did you mean "maxAttempts"?)'


def test_wrong_types_for_bool_string_and_object() -> None:
    assert (
        single_problem('{commands: {restart: "yes"}}')
        == 'commands.restart: expected true or false, got "yes"'
    )
    assert (
        single_problem("{gateway: {auth: {token: 5}}}")
        == "gateway.auth.token: expected a string, got a number (value hidden)"
    )
    assert single_problem("{gateway: 3}") == "gateway: expected an object, got 3"
    assert single_problem("{gateway: {auth: null}}") == "gateway.auth: expected an object, got null"


def test_empty_secret_is_rejected() -> None:
    problem = single_problem('{gateway: {auth: {token: ""}}}')
    assert problem.startswith("gateway.auth.token: ")
    assert "non-empty" in problem


def test_optional_field_accepts_null() -> None:
    config, _ = parse("{gateway: {mode: null, auth: {token: null}}}", {})
    assert config.gateway.mode is None
    assert config.gateway.auth.token is None


def test_nested_range_violation() -> None:
    problem = single_problem("{gateway: {reload: {debounceMs: 60001}}}")
    assert problem == "gateway.reload.debounceMs: expected an integer 0-60000, got 60001"
    problem = single_problem("{gateway: {auth: {rateLimit: {maxAttempts: 0}}}}")
    assert problem == "gateway.auth.rateLimit.maxAttempts: expected an integer >= 1, got 0"


def test_long_bad_values_are_shortened() -> None:
    problem = single_problem(f'{{gateway: {{bind: "{"x" * 200}"}}}}')
    assert "\n" not in problem
    assert problem.startswith(
        'gateway.bind: expected one of "loopback", "lan", "tailnet", "auto", "custom", got "xxx'
    )
    assert problem.endswith("...")
    assert len(problem) < 200


def test_all_problems_are_reported_in_one_error() -> None:
    text = """{
      gateway: {
        port: "abc",
        bind: "wifi",
        prot: 1,
        auth: { rateLimit: { maxAtempts: 3 } },
      },
      logging: { level: "loud" },
    }"""
    with pytest.raises(ConfigError) as info:
        parse(text, {}, source="/etc/neo.json")
    err = info.value
    paths = [p.split(":", 1)[0] for p in err.problems]
    assert paths == [
        "gateway.port",
        "gateway.bind",
        "gateway.prot",
        "gateway.auth.rateLimit.maxAtempts",
        "logging.level",
    ]
    message = str(err)
    assert "\n" not in message
    assert message.startswith("Invalid config at /etc/neo.json: ")
    for problem in err.problems:
        assert "\n" not in problem
        assert problem in message
    assert err.source == "/etc/neo.json"


def test_config_error_exit_code_is_ex_config() -> None:
    with pytest.raises(ConfigError) as info:
        parse("{gateway: {port: 0}}", {})
    assert info.value.exit_code == EX_CONFIG == 78
    assert isinstance(info.value, GatewayError)


def test_syntax_error_mentions_the_line() -> None:
    text = "{\n  gateway: {\n    port: ,\n  },\n}\n"
    problem = single_problem(text)
    assert problem.startswith("syntax error: ")
    assert "line 3" in problem
    assert "<string>" not in problem


def test_syntax_error_unterminated_object() -> None:
    problem = single_problem('{\n gateway: {mode: "local"}\n')
    assert problem.startswith("syntax error: ")
    assert "line" in problem


@pytest.mark.parametrize("text", ["[]", '[{"gateway": {}}]', '"gateway"', "5", "null", "true"])
def test_top_level_must_be_an_object(text: str) -> None:
    problem = single_problem(text)
    assert problem.startswith("expected an object at the top level, got ")


def test_top_level_array_names_a_list() -> None:
    assert single_problem("[1, 2]") == "expected an object at the top level, got a list"


# -- ${VAR} substitution --------------------------------------------------------------------


def test_env_substitution_in_strings() -> None:
    text = '{gateway: {auth: {token: "${NEO_TOKEN}"}, remote: {url: "ws://${HOST}:${PORT}/x"}}}'
    config, warnings = parse(text, {"NEO_TOKEN": "s3cret", "HOST": "example", "PORT": "1"})
    assert config.gateway.auth.token == "s3cret"
    assert config.gateway.remote.url == "ws://example:1/x"
    assert warnings == []


def test_escaped_variable_stays_literal() -> None:
    config, warnings = parse('{gateway: {auth: {token: "$${NEO_TOKEN}"}}}', {"NEO_TOKEN": "s3cret"})
    assert config.gateway.auth.token == "${NEO_TOKEN}"
    assert warnings == []


def test_escaped_unset_variable_stays_literal_without_warning() -> None:
    config, warnings = parse('{gateway: {auth: {token: "$${UNSET_VAR}"}}}', {})
    assert config.gateway.auth.token == "${UNSET_VAR}"
    assert warnings == []


def test_missing_variable_warns_and_is_left_as_is() -> None:
    config, warnings = parse('{gateway: {auth: {token: "${NOT_SET}"}}}', {})
    assert config.gateway.auth.token == "${NOT_SET}"
    assert len(warnings) == 1
    assert "gateway.auth.token" in warnings[0]
    assert "NOT_SET" in warnings[0]


def test_lowercase_names_are_not_variables() -> None:
    config, warnings = parse('{gateway: {auth: {token: "${lower}"}}}', {"lower": "x"})
    assert config.gateway.auth.token == "${lower}"
    assert warnings == []


def test_substitution_result_is_validated() -> None:
    with pytest.raises(ConfigError) as info:
        parse('{gateway: {bind: "${MY_BIND}"}}', {"MY_BIND": "wifi"})
    assert info.value.problems == [
        'gateway.bind: expected one of "loopback", "lan", "tailnet", "auto", "custom", got "wifi"'
    ]


def test_substitute_env_walks_lists_and_dicts() -> None:
    warnings: list[str] = []
    value = {"a": ["${X}", {"b": "${MISSING}"}], "n": 3, "t": True}
    out = substitute_env(value, {"X": "1"}, warnings, "")
    assert out == {"a": ["1", {"b": "${MISSING}"}], "n": 3, "t": True}
    assert len(warnings) == 1
    assert "a[1].b" in warnings[0]
    assert "MISSING" in warnings[0]
    # the input is not modified in place
    assert value == {"a": ["${X}", {"b": "${MISSING}"}], "n": 3, "t": True}


def test_substitute_env_on_a_plain_string() -> None:
    warnings: list[str] = []
    assert substitute_env("pre-${A}-$${A}-post", {"A": "v"}, warnings, "") == "pre-v-${A}-post"
    assert warnings == []


# -- load_file ------------------------------------------------------------------------------


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "smart-agent-neo.json"
    loaded = load_file(path, {})
    assert loaded == Loaded(Config(), path, exists=False)
    assert loaded.exists is False
    assert loaded.warnings == ()
    assert not path.exists()
    assert not path.parent.exists()


def test_existing_file_is_loaded_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "smart-agent-neo.json"
    path.write_text('{gateway: {mode: "local", port: 20000, auth: {token: "${TOK}"}}}')
    loaded = load_file(path, {})
    assert loaded.exists is True
    assert loaded.path == path
    assert loaded.config.gateway.port == 20000
    assert loaded.config.gateway.mode == "local"
    assert len(loaded.warnings) == 1
    assert "TOK" in loaded.warnings[0]


def test_invalid_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "smart-agent-neo.json"
    path.write_text("{gateway: {port: 0}}")
    with pytest.raises(ConfigError) as info:
        load_file(path, {})
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"Invalid config at {path}: gateway.port: ")


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_file(tmp_path, {})  # a directory
    assert info.value.problems[0].startswith("cannot read file")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "smart-agent-neo.json"
    path.write_bytes(b'{gateway: {mode: "\xff"}}')
    with pytest.raises(ConfigError) as info:
        load_file(path, {})
    assert info.value.exit_code == 78
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ['{gateway: {mode: "local"}}', "{gateway: {port: 0}}", "{oops"])
def test_loading_never_writes_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "smart-agent-neo.json"
    path.write_text(text)
    past = 1_000_000_000
    os.utime(path, ns=(past * 10**9, past * 10**9))
    path.chmod(0o400)
    before = path.stat()
    with contextlib.suppress(ConfigError):
        load_file(path, {"UNUSED": "x"})
    after = path.stat()
    assert path.read_text() == text
    assert after.st_mtime_ns == before.st_mtime_ns
    assert after.st_mode == before.st_mode
    assert after.st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smart-agent-neo.json"]


def test_a_mistyped_secret_is_not_echoed() -> None:
    """FAILURE-MODES 22: secrets never reach a message, even when they have the wrong type."""
    with pytest.raises(ConfigError) as raised:
        parse("{gateway: {auth: {token: 987654321}}}", {})
    assert "987654321" not in str(raised.value)
    assert "gateway.auth.token: expected a string, got a number (value hidden)" in str(raised.value)
