"""The file sink and the pipeline on real files: format and location, rotation by size and by
day, retention, rate-limited repeats, and a full disk (FAILURE-MODES.md item 27)."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from gateway.config.model import Config, Logging, LogRateLimit
from gateway.logs.files import LogTarget
from gateway.logs.filesink import RETRY_AFTER, FileSink
from gateway.logs.pipeline import LogPipeline

from .conftest import make_settings
from .logkit import capture_logs


def _ts(day: int, hour: int = 12) -> float:
    return datetime(2026, 3, day, hour, 0, 0).timestamp()


def _line(i: int, pad: int = 0) -> str:
    return json.dumps({"i": i, "pad": "x" * pad}) + "\n"


def test_rotation_by_size_keeps_numbered_archives_and_retention_count(tmp_path: Path) -> None:
    """FAILURE-MODES.md item 27: size rotation actually switches the file; disk use bounded."""
    sink = FileSink(warn=lambda m: None)
    sink.configure(LogTarget(tmp_path, "neo"), max_bytes=1000, max_files=3)
    for i in range(40):  # ~100 bytes each: about 4 files' worth
        sink.write(_line(i, 80), _ts(2), mono=0)
    sink.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["neo-2026-03-02.log", "neo-2026-03-02.log.1", "neo-2026-03-02.log.2"]
    for name in names:
        assert (tmp_path / name).stat().st_size <= 1000
    live = [json.loads(x)["i"] for x in (tmp_path / names[0]).read_text().splitlines()]
    older = [json.loads(x)["i"] for x in (tmp_path / names[1]).read_text().splitlines()]
    assert live[-1] == 39
    assert older[-1] == live[0] - 1  # .1 holds exactly the lines before the live file
    assert stat.S_IMODE((tmp_path / names[0]).stat().st_mode) == 0o600


def test_rotation_by_day_starts_a_new_file_and_prunes_old_days(tmp_path: Path) -> None:
    sink = FileSink(warn=lambda m: None)
    sink.configure(LogTarget(tmp_path, "neo"), max_bytes=1 << 20, max_files=2)
    sink.write(_line(1), _ts(1, 23), mono=0)
    sink.write(_line(2), _ts(2, 0), mono=0)
    assert sorted(os.listdir(tmp_path)) == ["neo-2026-03-01.log", "neo-2026-03-02.log"]
    sink.write(_line(3), _ts(3, 9), mono=0)
    sink.close()
    assert sorted(os.listdir(tmp_path)) == ["neo-2026-03-02.log", "neo-2026-03-03.log"]
    assert json.loads((tmp_path / "neo-2026-03-03.log").read_text())["i"] == 3


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_disk_drops_lines_warns_once_and_recovers(tmp_path: Path) -> None:
    """FAILURE-MODES.md item 27: a full disk never raises into the gateway."""
    warnings: list[str] = []
    sink = FileSink(warn=warnings.append)
    target = LogTarget(tmp_path, "neo")
    sink.configure(target, max_bytes=1 << 20, max_files=5)
    live = target.dated(datetime.fromtimestamp(_ts(4)).date())
    live.symlink_to("/dev/full")  # every write: ENOSPC
    for i in range(5):
        sink.write(_line(i), _ts(4), mono=float(i))  # must not raise
    assert len(warnings) == 1
    assert "No space left on device" in warnings[0]
    assert sink.dropped_total == 5
    live.unlink()  # space again
    sink.write(_line(99), _ts(4), mono=RETRY_AFTER + 10)
    sink.close()
    rows = [json.loads(x) for x in live.read_text().splitlines()]
    assert rows[0]["message"] == "log file writable again; 5 line(s) were dropped"
    assert rows[0]["level"] == "warn"
    assert rows[1]["i"] == 99


def test_pipeline_writes_json_lines_under_the_state_dir_and_terse_console(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with capture_logs(settings, verbose=False) as cap:
        logging.getLogger("gateway.ws").info("client connected", extra={"ip": "127.0.0.1"})
        logging.getLogger("gateway.rpc").debug("request", extra={"method": "health"})
    (path,) = cap.files()
    assert path.parent == tmp_path / "logs"
    assert path.name == f"smart-agent-neo-{datetime.now():%Y-%m-%d}.log"
    (row,) = cap.lines()  # debug is below the default file level
    assert {k: row[k] for k in ("level", "subsystem", "message", "ip")} == {
        "level": "info",
        "subsystem": "gateway/ws",
        "message": "client connected",
        "ip": "127.0.0.1",
    }
    assert cap.console_text().endswith("[ws] client connected ip=127.0.0.1\n")
    assert "request" not in cap.console_text()


def test_verbose_mirrors_debug_to_the_console_but_not_the_file(tmp_path: Path) -> None:
    with capture_logs(make_settings(tmp_path), verbose=True) as cap:
        logging.getLogger("gateway.rpc").debug("request", extra={"method": "health"})
    assert "debug [rpc] request method=health" in cap.console_text()
    assert cap.lines() == []


def test_identical_lines_are_rate_limited_with_a_summary(tmp_path: Path) -> None:
    """FAILURE-MODES.md items 16 and 27: an auth-failure storm writes a bounded number of lines."""
    config = Config(logging=Logging(rate_limit=LogRateLimit(max_repeats=3, window_ms=60_000)))
    settings = make_settings(tmp_path, config=config)
    clock = [0.0]
    buffer = io.StringIO()
    pipeline = LogPipeline(
        settings, console=Console(file=buffer, no_color=True), clock=lambda: clock[0]
    )
    log = logging.getLogger("gateway.test.repeats")
    log.addHandler(pipeline)
    log.propagate = False
    try:
        for _ in range(500):
            log.warning("auth failed", extra={"ip": "10.0.0.9", "reason": "AUTH_TOKEN_MISMATCH"})
        log.warning("something else")
        clock[0] = 61.0
        log.warning("auth failed", extra={"ip": "10.0.0.9", "reason": "AUTH_TOKEN_MISMATCH"})
    finally:
        log.removeHandler(pipeline)
        pipeline.close()
    target = tmp_path / "logs"
    rows = [json.loads(x) for p in target.iterdir() for x in p.read_text().splitlines()]
    msgs = [r["message"] for r in rows]
    assert msgs.count("auth failed") == 4  # 3 in the first window, 1 in the next
    (summary,) = [r for r in rows if "suppressed" in r]
    assert summary["suppressed"] == 497
    assert "497 identical line(s)" in summary["message"]
    assert pipeline.limiter.suppressed_total == 497
    assert len(buffer.getvalue().splitlines()) == len(rows)
