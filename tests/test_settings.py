"""Profiles/paths and the resolution of flags + env + config (OPERATIONS.md B.1-B.3, C.1, C.4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config.load import Loaded, parse
from gateway.config.model import DEFAULT_PORT
from gateway.config.paths import (
    ENV_CONFIG_PATH,
    ENV_HOME,
    ENV_PASSWORD,
    ENV_PORT,
    ENV_PROFILE,
    ENV_STATE_DIR,
    ENV_TOKEN,
    Paths,
    derived_ports,
    normalize_profile,
    profile_default_port,
    resolve_paths,
)
from gateway.config.settings import Overrides, Settings, check_mode, is_loopback_host, resolve
from gateway.errors import EX_FAILURE, GatewayError, StartupError

HOME = Path("/home/alice")
GENERATED = "generated-token"

# -- paths and profiles ---------------------------------------------------------------------


def test_default_state_dir_and_config_path() -> None:
    paths = resolve_paths(None, {}, HOME)
    assert paths == Paths(
        None, HOME / ".smart-agent-neo", HOME / ".smart-agent-neo" / "smart-agent-neo.json"
    )
    assert paths.token_file == HOME / ".smart-agent-neo" / "gateway.token"


def test_named_profile_gets_a_suffixed_state_dir() -> None:
    paths = resolve_paths("rescue", {}, HOME)
    assert paths.profile == "rescue"
    assert paths.state_dir == HOME / ".smart-agent-neo-rescue"
    assert paths.config_path == HOME / ".smart-agent-neo-rescue" / "smart-agent-neo.json"


@pytest.mark.parametrize("name", ["default", "Default", "DEFAULT"])
def test_default_profile_means_no_suffix(name: str) -> None:
    assert normalize_profile(name) is None
    paths = resolve_paths(name, {}, HOME)
    assert paths.profile is None
    assert paths.state_dir == HOME / ".smart-agent-neo"


@pytest.mark.parametrize("name", ["rescue", "dev", "a_b-C9", "X"])
def test_valid_profile_names(name: str) -> None:
    assert normalize_profile(name) == name


@pytest.mark.parametrize(
    "name", ["bad name", "a/b", "../x", "a.b", "ü", "rescue!", "rescue\n", "\nrescue", "a\tb"]
)
def test_invalid_profile_names_are_rejected(name: str) -> None:
    with pytest.raises(GatewayError) as info:
        normalize_profile(name)
    assert str(info.value) == 'Invalid --profile (use letters, numbers, "_", "-" only)'


def test_empty_profile_requires_a_value() -> None:
    with pytest.raises(GatewayError, match=r"^--profile requires a value$"):
        normalize_profile("")


def test_invalid_profile_from_resolve_paths() -> None:
    with pytest.raises(GatewayError, match="Invalid --profile"):
        resolve_paths("a/b", {}, HOME)


def test_profile_from_env_when_no_flag() -> None:
    assert (
        resolve_paths(None, {ENV_PROFILE: "work"}, HOME).state_dir == HOME / ".smart-agent-neo-work"
    )
    # the flag beats the env
    assert resolve_paths("rescue", {ENV_PROFILE: "work"}, HOME).profile == "rescue"


def test_state_dir_env_override_moves_the_config_too() -> None:
    paths = resolve_paths("rescue", {ENV_STATE_DIR: "/srv/neo"}, HOME)
    assert paths.state_dir == Path("/srv/neo")
    assert paths.config_path == Path("/srv/neo/smart-agent-neo.json")
    assert paths.profile == "rescue"


def test_config_path_env_override() -> None:
    paths = resolve_paths(None, {ENV_CONFIG_PATH: "/etc/neo/config.json5"}, HOME)
    assert paths.config_path == Path("/etc/neo/config.json5")
    assert paths.state_dir == HOME / ".smart-agent-neo"


def test_both_env_overrides() -> None:
    env = {ENV_STATE_DIR: "/srv/state", ENV_CONFIG_PATH: "/srv/cfg.json"}
    paths = resolve_paths("rescue", env, HOME)
    assert (paths.state_dir, paths.config_path) == (Path("/srv/state"), Path("/srv/cfg.json"))


def test_empty_env_overrides_are_ignored() -> None:
    paths = resolve_paths(None, {ENV_STATE_DIR: "", ENV_CONFIG_PATH: "", ENV_HOME: ""}, HOME)
    assert paths == resolve_paths(None, {}, HOME)


def test_empty_profile_env_is_treated_as_unset() -> None:
    # like the other SMART_AGENT_NEO_* path variables, an empty value means "not set"; it
    # must not fail with a message about a --profile flag the user never passed
    assert resolve_paths(None, {ENV_PROFILE: ""}, HOME) == resolve_paths(None, {}, HOME)


def test_home_env_override() -> None:
    paths = resolve_paths("rescue", {ENV_HOME: "/other"}, HOME)
    assert paths.state_dir == Path("/other/.smart-agent-neo-rescue")


def test_derived_ports() -> None:
    ports = derived_ports(18789)
    assert (ports.gateway, ports.browser_control, ports.canvas) == (18789, 18791, 18793)
    dev = derived_ports(19001)
    assert (dev.browser_control, dev.canvas) == (19003, 19005)


def test_only_dev_profile_implies_a_port() -> None:
    assert profile_default_port("dev") == 19001
    assert profile_default_port(None) is None
    assert profile_default_port("rescue") is None


# -- helpers for resolve() ------------------------------------------------------------------


def loaded(text: str = "{}", *, exists: bool = True) -> Loaded:
    config, _ = parse(text, {})
    return Loaded(config, Path("/cfg/smart-agent-neo.json"), exists)


def paths_for(profile: str | None = None) -> Paths:
    return Paths(profile, Path("/state"), Path("/state/smart-agent-neo.json"))


def never_generate() -> str:
    raise AssertionError("a token was generated although one was configured")


def run(
    text: str = "{}",
    overrides: Overrides | None = None,
    env: dict[str, str] | None = None,
    profile: str | None = None,
    generate: Callable[[], str] = lambda: GENERATED,
) -> Settings:
    return resolve(loaded(text), paths_for(profile), overrides or Overrides(), env or {}, generate)


# -- port -----------------------------------------------------------------------------------


def test_port_default() -> None:
    assert run().port == 18789


def test_port_from_config() -> None:
    assert run("{gateway: {port: 20000}}").port == 20000


def test_dev_profile_beats_config_port() -> None:
    assert run("{gateway: {port: 20000}}", profile="dev").port == 19001


def test_env_port_beats_dev_profile_and_config() -> None:
    assert run("{gateway: {port: 20000}}", env={ENV_PORT: "21000"}, profile="dev").port == 21000


def test_flag_port_beats_everything() -> None:
    settings = run(
        "{gateway: {port: 20000}}", Overrides(port=22000), env={ENV_PORT: "21000"}, profile="dev"
    )
    assert settings.port == 22000


def test_flag_port_zero_is_allowed() -> None:
    assert run(overrides=Overrides(port=0)).port == 0


@pytest.mark.parametrize("bad", [-1, 65536])
def test_flag_port_out_of_range(bad: int) -> None:
    with pytest.raises(StartupError, match="Invalid port") as info:
        run(overrides=Overrides(port=bad))
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("raw", ["abc", "0", "70000", "-5", "12.5"])
def test_invalid_env_port_is_a_clear_error(raw: str) -> None:
    with pytest.raises(StartupError) as info:
        run(env={ENV_PORT: raw})
    assert str(info.value) == f'{ENV_PORT}: expected an integer 1-65535, got "{raw}"'
    assert info.value.exit_code == EX_FAILURE


def test_empty_env_port_is_ignored() -> None:
    assert run("{gateway: {port: 20000}}", env={ENV_PORT: ""}).port == 20000


# -- bind -----------------------------------------------------------------------------------


def test_bind_default_is_loopback() -> None:
    settings = run()
    assert (settings.bind, settings.host) == ("loopback", "127.0.0.1")
    assert settings.url == f"ws://127.0.0.1:{DEFAULT_PORT}"


def test_bind_auto_is_loopback_host() -> None:
    assert run('{gateway: {bind: "auto"}}').host == "127.0.0.1"


def with_origins(text: str) -> str:
    """A non-loopback bind also needs the Control UI's allowed origins (or the UI off)."""
    return text.replace(
        "{gateway: {", '{gateway: {controlUi: {allowedOrigins: ["https://u.example"]}, ', 1
    )


def test_bind_lan_with_configured_token() -> None:
    settings = run(with_origins('{gateway: {bind: "lan", auth: {token: "cfg-token"}}}'))
    assert (settings.bind, settings.host) == ("lan", "0.0.0.0")


def test_cli_bind_beats_config() -> None:
    settings = run('{gateway: {bind: "lan"}}', Overrides(bind="loopback"))
    assert (settings.bind, settings.host) == ("loopback", "127.0.0.1")


def test_invalid_cli_bind() -> None:
    with pytest.raises(
        StartupError,
        match=r'^Invalid --bind \(use "loopback", "lan", "tailnet", "auto", or "custom"\)$',
    ):
        run(overrides=Overrides(bind="0.0.0.0"))


def test_custom_bind_from_config() -> None:
    text = '{gateway: {bind: "custom", customBindHost: "10.1.2.3", auth: {token: "t"}}}'
    settings = run(with_origins(text))
    assert (settings.bind, settings.host) == ("custom", "10.1.2.3")


def test_custom_bind_needs_a_host() -> None:
    with pytest.raises(StartupError, match="custom requires --host"):
        run('{gateway: {bind: "custom"}}')


def test_custom_bind_host_must_be_an_ip() -> None:
    with pytest.raises(StartupError, match='Invalid bind host "my-host"'):
        run(overrides=Overrides(bind="custom", host="my-host"))


def test_host_flag_implies_custom() -> None:
    settings = run(overrides=Overrides(host="127.0.0.2"))
    assert (settings.bind, settings.host) == ("custom", "127.0.0.2")


def test_host_flag_beats_config_custom_host() -> None:
    text = '{gateway: {bind: "custom", customBindHost: "10.1.2.3"}}'
    settings = run(text, Overrides(host="::1"))
    assert settings.host == "::1"
    assert settings.url == "ws://[::1]:18789"


def test_bracketed_ipv6_host_is_unwrapped() -> None:
    assert run(overrides=Overrides(host="[::1]")).host == "::1"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("::", False),
        ("example.com", False),
    ],
)
def test_is_loopback_host(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected


# -- non-loopback bind needs a user-chosen secret --------------------------------------------


def test_lan_with_only_a_generated_token_is_refused() -> None:
    """FAILURE-MODES 20: no lan bind without a secret the user configured."""
    with pytest.raises(StartupError) as info:
        run('{gateway: {bind: "lan", port: 20000}}')
    message = str(info.value)
    assert message.startswith("refusing to bind gateway to 0.0.0.0:20000 without auth")
    assert ENV_TOKEN in message
    assert ENV_PASSWORD in message
    assert info.value.exit_code == 1


def test_cli_lan_with_only_a_generated_token_is_refused() -> None:
    with pytest.raises(
        StartupError, match=r"^refusing to bind gateway to 0\.0\.0\.0:18789 without auth"
    ):
        run(overrides=Overrides(bind="lan"))


def test_custom_non_loopback_host_without_secret_is_refused() -> None:
    with pytest.raises(
        StartupError, match=r"^refusing to bind gateway to 10\.0\.0\.7:18789 without auth"
    ):
        run(overrides=Overrides(host="10.0.0.7"))


def test_custom_ipv6_host_without_secret_is_refused_with_brackets() -> None:
    with pytest.raises(
        StartupError, match=r"^refusing to bind gateway to \[fd00::1\]:18789 without auth"
    ):
        run(overrides=Overrides(host="fd00::1"))


def test_custom_loopback_host_with_generated_token_is_allowed() -> None:
    settings = run(overrides=Overrides(host="127.0.0.5"))
    assert settings.auth.source == "generated"


@pytest.mark.parametrize(
    ("text", "overrides", "env", "source"),
    [
        ('{gateway: {bind: "lan"}}', Overrides(token="flag-token"), {}, "flag"),
        ('{gateway: {bind: "lan"}}', Overrides(), {ENV_TOKEN: "env-token"}, "env"),
        ('{gateway: {bind: "lan", auth: {token: "cfg-token"}}}', Overrides(), {}, "config"),
        ('{gateway: {bind: "lan"}}', Overrides(password="pw"), {}, "flag"),
        ('{gateway: {bind: "lan"}}', Overrides(), {ENV_PASSWORD: "pw"}, "env"),
    ],
)
def test_lan_with_a_user_secret_is_allowed(
    text: str, overrides: Overrides, env: dict[str, str], source: str
) -> None:
    settings = run(with_origins(text), overrides, env, generate=never_generate)
    assert settings.host == "0.0.0.0"
    assert settings.auth.source == source
    assert settings.auth.user_configured is True


def test_auth_mode_none_on_lan_is_refused() -> None:
    """FAILURE-MODES 20: no lan bind with auth mode none."""
    with pytest.raises(
        StartupError, match=r"^refusing to bind gateway to 0\.0\.0\.0:18789 without auth"
    ):
        run('{gateway: {bind: "lan", auth: {mode: "none", token: "cfg-token"}}}')


def test_auth_mode_none_on_loopback_is_allowed() -> None:
    settings = run('{gateway: {auth: {mode: "none"}}}', generate=never_generate)
    assert (settings.auth.mode, settings.auth.token, settings.auth.password) == ("none", None, None)
    assert settings.auth.source == "none"


# -- secrets --------------------------------------------------------------------------------


def test_no_secret_anywhere_generates_a_token() -> None:
    auth = run().auth
    assert (auth.mode, auth.token, auth.source) == ("token", GENERATED, "generated")
    assert auth.user_configured is False


def test_token_precedence_flag_config_env() -> None:
    """OPERATIONS.md B.1: token = gateway.auth.token, else the env var; --token beats both."""
    text = '{gateway: {auth: {token: "cfg"}}}'
    env = {ENV_TOKEN: "env"}
    flag = run(text, Overrides(token="flag"), env, generate=never_generate).auth
    assert (flag.token, flag.source) == ("flag", "flag")
    from_cfg = run(text, Overrides(), env, generate=never_generate).auth
    assert (from_cfg.token, from_cfg.source) == ("cfg", "config")
    from_env = run("{}", Overrides(), env, generate=never_generate).auth
    assert (from_env.token, from_env.source) == ("env", "env")


def test_empty_env_token_falls_through_to_config() -> None:
    auth = run('{gateway: {auth: {token: "cfg"}}}', env={ENV_TOKEN: ""}).auth
    assert (auth.token, auth.source) == ("cfg", "config")


def test_password_only_selects_password_mode() -> None:
    auth = run('{gateway: {auth: {password: "pw"}}}', generate=never_generate).auth
    assert (auth.mode, auth.password, auth.token, auth.source) == ("password", "pw", None, "config")


def test_password_precedence_flag_config_env() -> None:
    text = '{gateway: {auth: {mode: "password", password: "cfg"}}}'
    auth = run(text, Overrides(password="flag"), {ENV_PASSWORD: "env"}).auth
    assert (auth.password, auth.source) == ("flag", "flag")
    auth = run(text, Overrides(), {ENV_PASSWORD: "env"}).auth
    assert (auth.password, auth.source) == ("cfg", "config")
    auth = run('{gateway: {auth: {mode: "password"}}}', Overrides(), {ENV_PASSWORD: "env"}).auth
    assert (auth.password, auth.source) == ("env", "env")


def test_unset_mode_with_token_and_password_is_password() -> None:
    """B.1, runbook era: mode unset -> password when a password is there."""
    auth = run('{gateway: {auth: {token: "t", password: "pw"}}}', generate=never_generate).auth
    assert (auth.mode, auth.password) == ("password", "pw")


def test_password_mode_without_password_is_a_clear_error() -> None:
    with pytest.raises(StartupError) as info:
        run('{gateway: {auth: {mode: "password"}}}', generate=never_generate)
    message = str(info.value)
    assert message.startswith("gateway auth mode is password, but no password was configured")
    assert "gateway.auth.password" in message
    assert ENV_PASSWORD in message


def test_cli_auth_mode_overrides_config() -> None:
    text = '{gateway: {auth: {mode: "token", token: "t", password: "pw"}}}'
    auth = run(text, Overrides(auth_mode="password")).auth
    assert (auth.mode, auth.password) == ("password", "pw")


def test_invalid_cli_auth_mode() -> None:
    with pytest.raises(StartupError, match="Invalid --auth"):
        run(overrides=Overrides(auth_mode="bogus"))


def test_settings_carry_config_and_exists_flag() -> None:
    ld = loaded('{gateway: {mode: "local"}}', exists=False)
    settings = resolve(ld, paths_for(), Overrides(), {}, lambda: GENERATED)
    assert settings.config is ld.config
    assert settings.config_exists is False
    assert settings.paths == paths_for()


# -- check_mode -----------------------------------------------------------------------------


def test_check_mode_missing_config() -> None:
    with pytest.raises(StartupError) as info:
        check_mode(loaded(exists=False), allow_unconfigured=False)
    assert str(info.value).startswith("Missing config. Run `smart-agent-neo setup` ")
    assert "--allow-unconfigured" in str(info.value)


def test_check_mode_remote_is_blocked() -> None:
    with pytest.raises(StartupError) as info:
        check_mode(loaded('{gateway: {mode: "remote"}}'), allow_unconfigured=False)
    assert str(info.value) == (
        "Gateway start blocked: set gateway.mode=local (current: remote) or pass --allow-unconfigured."
    )


def test_check_mode_unset_is_blocked() -> None:
    with pytest.raises(StartupError, match=r"\(current: unset\)"):
        check_mode(loaded("{}"), allow_unconfigured=False)


def test_check_mode_local_passes() -> None:
    check_mode(loaded('{gateway: {mode: "local"}}'), allow_unconfigured=False)


@pytest.mark.parametrize(
    "ld", [loaded(exists=False), loaded('{gateway: {mode: "remote"}}'), loaded("{}")]
)
def test_allow_unconfigured_passes(ld: Loaded) -> None:
    check_mode(ld, allow_unconfigured=True)
