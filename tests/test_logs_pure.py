"""Pure parts of the logging package: line format, redaction, repeat limit, file naming,
rotation plans, the logs.tail algorithm, and reading lines back for the CLI."""

from __future__ import annotations

import io
import json
import logging
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from gateway.cli.logview import clock, parse_line, render_line
from gateway.logs.console import render
from gateway.logs.entry import Entry, from_record, level_name, to_json_line
from gateway.logs.files import LogTarget, archive_shifts, newest_live, plan_prune, target_for
from gateway.logs.redact import MASK, Redactor, config_secrets, mask
from gateway.logs.repeats import RepeatLimiter
from gateway.logs.tail import plan, split

from .conftest import make_settings

TS = 1_767_225_600.123  # 2026-01-01T00:00:00.123Z


# -- the line ----------------------------------------------------------------------------------


def test_json_line_has_the_documented_keys_and_reference_compat_keys() -> None:
    entry = Entry(TS, logging.WARNING, "gateway/ws", "auth failed", {"ip": "10.0.0.2", "n": 3})
    line = to_json_line(entry)
    assert line.endswith("\n")
    assert "\n" not in line[:-1]
    obj = json.loads(line)
    # OPERATIONS.md H.2, the project's choice: time, level, subsystem, message
    assert list(obj)[:4] == ["time", "level", "subsystem", "message"]
    assert obj["level"] == "warn"
    assert obj["subsystem"] == "gateway/ws"
    assert obj["message"] == "auth failed"
    assert obj["ip"] == "10.0.0.2"
    assert obj["n"] == 3
    assert obj["time"].startswith("20")  # ISO 8601 with offset
    assert obj["time"][-6] in "+-"
    # what OpenClaw's readers use: "0" for the message, _meta for time/level/subsystem
    assert obj["0"] == "auth failed"
    assert obj["_meta"]["logLevelName"] == "WARN"
    assert obj["_meta"]["date"] == obj["time"]
    assert json.loads(obj["_meta"]["name"]) == {"subsystem": "gateway/ws"}


def test_record_extras_become_fields_and_reserved_names_are_renamed() -> None:
    record = logging.LogRecord("gateway.rpc", logging.DEBUG, __file__, 1, "req %s", ("x",), None)
    record.__dict__.update({"method": "health", "time": "clash", "durationMs": 1.5})
    entry = from_record(record)
    assert entry.msg == "req x"
    assert entry.subsystem == "gateway/rpc"
    assert entry.fields == {"method": "health", "time_": "clash", "durationMs": 1.5}


def test_exceptions_become_an_error_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "gateway", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = from_record(record)
    assert "ValueError: boom" in str(entry.fields["error"])


@pytest.mark.parametrize(
    ("levelno", "name"),
    [(5, "trace"), (10, "debug"), (20, "info"), (30, "warn"), (40, "error"), (50, "fatal")],
)
def test_level_names(levelno: int, name: str) -> None:
    assert level_name(levelno) == name


def test_console_line_is_terse_and_golden() -> None:
    entry = Entry(TS, logging.WARNING, "gateway/ws", "auth failed", {"ip": "10.0.0.2"})
    console = Console(width=100, no_color=True, file=io.StringIO())
    console.print(render(entry))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.endswith("warn [ws] auth failed ip=10.0.0.2\n")
    assert len(text.split()[0]) == 8  # HH:MM:SS
    info = Entry(TS, logging.INFO, "gateway", "listening on ws://127.0.0.1:1", {})
    assert render(info).plain.endswith(" [gateway] listening on ws://127.0.0.1:1")


# -- redaction: each kind of secret --------------------------------------------------------------


def test_configured_secrets_are_masked_anywhere_in_text() -> None:
    r = Redactor(["test-token-0123456789", "hunter2-password"])
    out = r.text("token test-token-0123456789 and pw hunter2-password in prose")
    assert "test-token-0123456789" not in out
    assert "hunter2-password" not in out
    assert out == f"token {MASK} and pw {MASK} in prose"


def test_presented_secret_in_connect_frame_auth_block_is_masked() -> None:
    frame = {
        "type": "req",
        "method": "connect",
        "params": {"client": {"id": "cli"}, "auth": {"token": "wrong-one-987", "password": None}},
    }
    out = Redactor().value(frame)
    assert json.dumps(out).count("wrong-one-987") == 0
    assert out["params"]["auth"] == {"token": MASK, "password": None}  # type: ignore[index]
    assert out["params"]["client"] == {"id": "cli"}  # type: ignore[index]


def test_a_presented_secret_quoted_by_a_validator_is_masked() -> None:
    long_token = "Z" * 40
    out = Redactor().text(f"invalid connect params: auth.token: '{long_token}' is too long")
    assert long_token not in out
    assert "auth.token: 'ZZZZ…ZZZZ' is too long" in out
    assert Redactor().text("auth.password: 12345678 is not of type 'string'").count("12345678") == 0


def test_authorization_headers_are_masked_as_fields_and_as_text() -> None:
    r = Redactor()
    assert r.value({"authorization": "Bearer abc.def", "host": "x"}) == {
        "authorization": MASK,
        "host": "x",
    }
    assert r.value({"Cookie": "sid=1"}) == {"Cookie": MASK}
    assert r.text("Authorization: Bearer abc.def-123") == f"Authorization: Bearer {MASK}"
    assert r.text("curl -H 'Authorization: Basic dXNlcjpwYXNz'").count("dXNlcjpwYXNz") == 0


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
        "sk-ant-api03-abcdefghijklmnopqrstuvwx",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "xoxb-1234567890-abcdefghij",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        "AKIAABCDEFGHIJKLMNOP",
        "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlMTIz",
    ],
)
def test_api_key_shapes_are_masked(secret: str) -> None:
    out = Redactor().text(f"calling provider with {secret} now")
    assert secret not in out
    assert out.startswith("calling provider with ")


def test_key_value_and_flag_forms_are_masked_but_prose_is_not() -> None:
    r = Redactor()
    assert r.text("GET /x?token=abc123&y=1") == f"GET /x?token={MASK}&y=1"
    assert r.text('{"apiKey": "k-1234567"}') == f'{{"apiKey": "{MASK}"}}'
    assert r.text("ran --password s3cret-pw") == f"ran --password {MASK}"
    prose = "unauthorized: gateway token mismatch (set gateway.remote.token to match gateway.auth.token)"
    assert r.text(prose) == prose
    pem = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"
    assert r.text(f"key {pem} end") == f"key {MASK} end"


def test_secret_named_fields_are_masked_and_lookalikes_are_not() -> None:
    r = Redactor()
    out = r.value({"apiKey": "x1", "deviceToken": "y1", "maxTokens": 5, "tokenSource": "config"})
    assert out == {"apiKey": MASK, "deviceToken": MASK, "maxTokens": 5, "tokenSource": "config"}


def test_long_masks_keep_a_hint_short_ones_do_not() -> None:
    assert mask("short-secret") == MASK
    assert mask("a" * 10 + "b" * 30) == "aaaa…bbbb"


def test_config_secrets_are_found_by_key_name(tmp_path: Path) -> None:
    import attrs

    from gateway.config.model import Config, Remote

    config = Config()
    config = attrs.evolve(
        config,
        gateway=attrs.evolve(config.gateway, remote=Remote(url="ws://x", token="remote-tok-42")),
    )
    assert set(config_secrets(config)) == {"remote-tok-42"}
    assert set(config_secrets({"providers": {"a": {"apiKey": "k-99999", "url": "u"}}})) == {
        "k-99999"
    }


# -- repeat limiter (FAILURE-MODES.md items 16, 27) ------------------------------------------------


def test_identical_lines_pass_up_to_the_limit_then_are_counted() -> None:
    limiter: RepeatLimiter[str] = RepeatLimiter(max_repeats=3, window=60)
    admitted = [limiter.admit("k", "auth failed", now=float(i)) for i in range(10)]
    assert admitted == [True] * 3 + [False] * 7
    assert limiter.admit("other", "x", now=10) is True
    assert limiter.due(now=30) == []
    (summary,) = limiter.due(now=61)
    assert (summary.sample, summary.count) == ("auth failed", 7)
    assert limiter.admit("k", "auth failed", now=62) is True  # a new window
    assert limiter.suppressed_total == 7


def test_limiter_table_is_bounded() -> None:
    limiter: RepeatLimiter[int] = RepeatLimiter(max_repeats=1, window=60, max_keys=4)
    for i in range(100):
        assert limiter.admit(i, i, now=0)
    assert len(limiter._windows) == 4


# -- file names, rotation, retention -----------------------------------------------------------------


def test_default_location_is_the_state_dir_with_the_dated_name(tmp_path: Path) -> None:
    target = target_for(tmp_path, None, None)
    assert target.dated(date(2026, 1, 5)) == tmp_path / "logs" / "smart-agent-neo-2026-01-05.log"
    profiled = target_for(tmp_path, "rescue", None)
    assert profiled.dated_name(date(2026, 1, 5)) == "smart-agent-neo-rescue-2026-01-05.log"


def test_logging_file_names_a_file_or_a_directory(tmp_path: Path) -> None:
    as_file = target_for(tmp_path, None, "/var/log/neo/gateway.log")
    assert as_file.dated(date(2026, 1, 5)) == Path("/var/log/neo/gateway-2026-01-05.log")
    as_dir = target_for(tmp_path, None, "/var/log/neo")
    assert as_dir.dated(date(2026, 1, 5)) == Path("/var/log/neo/smart-agent-neo-2026-01-05.log")
    relative = target_for(tmp_path, None, "mylogs/")
    assert relative.directory == tmp_path / "mylogs"


def test_prune_keeps_the_newest_files_and_ignores_foreign_ones() -> None:
    target = LogTarget(Path("/x"), "smart-agent-neo")
    names = [
        "smart-agent-neo-2026-01-01.log",
        "smart-agent-neo-2026-01-02.log.2",
        "smart-agent-neo-2026-01-02.log.1",
        "smart-agent-neo-2026-01-02.log",
        "smart-agent-neo-2026-01-03.log",
        "other.log",
        "smart-agent-neo-2026-13-40.log",
    ]
    assert plan_prune(target, names, keep=3) == [
        "smart-agent-neo-2026-01-02.log.2",
        "smart-agent-neo-2026-01-01.log",
    ]
    assert plan_prune(target, names, keep=10) == []


def test_archive_shifts_make_room_for_dot_one() -> None:
    target = LogTarget(Path("/x"), "s")
    day = date(2026, 1, 2)
    names = ["s-2026-01-02.log", "s-2026-01-02.log.1", "s-2026-01-02.log.2", "s-2026-01-01.log"]
    assert archive_shifts(target, day, names) == [
        ("s-2026-01-02.log.2", "s-2026-01-02.log.3"),
        ("s-2026-01-02.log.1", "s-2026-01-02.log.2"),
        ("s-2026-01-02.log", "s-2026-01-02.log.1"),
    ]


def test_tail_reads_today_or_else_the_newest_dated_file() -> None:
    target = LogTarget(Path("/x"), "s")
    names = ["s-2026-01-01.log", "s-2026-01-03.log", "s-2026-01-04.log.1"]
    assert newest_live(target, names, date(2026, 1, 4)) == "s-2026-01-03.log"
    assert newest_live(target, [*names, "s-2026-01-04.log"], date(2026, 1, 4)) == "s-2026-01-04.log"
    assert newest_live(target, [], date(2026, 1, 4)) is None


# -- logs.tail algorithm (PROTOCOL.md 7.9) --------------------------------------------------------------


def test_tail_plan_cases() -> None:
    assert plan(1000, None, 250).start == 750
    assert plan(1000, None, 250).truncated is True
    assert plan(100, None, 250) == plan(100, None, 250).__class__(0, False, False)
    rotated = plan(100, 500, 250)
    assert (rotated.start, rotated.reset, rotated.truncated) == (0, True, False)
    behind = plan(10_000, 100, 250)
    assert (behind.start, behind.reset, behind.truncated) == (9750, True, True)
    assert plan(1000, 900, 250).start == 900


def test_tail_split_drops_partial_first_and_unfinished_last_line() -> None:
    data = b'tail of an earlier line\n{"a":1}\n{"b":2}\n{"c":'
    lines = split(data, 100, starts_mid_line=True, limit=10)
    assert lines.lines == ['{"a":1}', '{"b":2}']
    assert lines.end == 100 + len(data) - len(b'{"c":')
    assert split(b"no newline yet", 7, starts_mid_line=False, limit=10).end == 7
    limited = split(b"1\n2\n3\n", 0, starts_mid_line=False, limit=2)
    assert (limited.lines, limited.cut) == (["2", "3"], True)


# -- reading lines back (CLI) ----------------------------------------------------------------------------


def test_parse_our_line_and_openclaws_line() -> None:
    ours = to_json_line(Entry(TS, logging.INFO, "gateway/ws", "client connected", {"ip": "x"}))
    parsed = parse_line(ours.strip())
    assert parsed is not None
    assert (parsed.level, parsed.subsystem, parsed.message, parsed.fields) == (
        "info",
        "gateway/ws",
        "client connected",
        {"ip": "x"},
    )
    theirs = json.dumps(
        {
            "0": "hooks",
            "1": {"n": 1},
            "_meta": {
                "logLevelName": "WARN",
                "date": "2026-01-01T00:00:00.000Z",
                "name": '{"subsystem":"gateway/hooks"}',
            },
            "time": "2026-01-01T00:00:00.000Z",
        }
    )
    other = parse_line(theirs)
    assert other is not None
    assert (other.level, other.subsystem, other.message) == (
        "warn",
        "gateway/hooks",
        'hooks {"n": 1}',
    )
    assert parse_line("not json") is None


def test_rendered_log_line_is_golden_in_utc() -> None:
    line = parse_line(
        '{"ts":"2026-01-01T10:20:30.000+00:00","level":"error","subsystem":"gateway/rpc",'
        '"msg":"handler failed","method":"status"}'
    )
    assert line is not None
    assert render_line(line, utc=True).plain == "10:20:30Z error [rpc] handler failed method=status"
    assert clock("garbage", utc=True) == "garbage"


def test_settings_resolve_the_same_target_as_the_pipeline(tmp_path: Path) -> None:
    from gateway.logs import log_target

    assert log_target(make_settings(tmp_path)) == target_for(tmp_path, None, None)
