"""The pairing stores' files (statefile.py): atomic 0600 writes in order, corrupt files set
aside and never overwritten, unreadable files never clobbered, failed writes survived."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
import trio

from gateway.statefile import StateFile


def corrupt_copies(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith("pending.json.corrupt-")]


async def test_writes_are_0600_and_the_newest_wins(tmp_path: Path) -> None:
    file = StateFile(tmp_path / "store" / "paired.json")
    asked: list[int] = []

    async def put(n: int) -> None:
        asked.append(n)  # save() takes its snapshot before it first yields
        assert await file.save({"n": n})

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(put, n)
    # the tasks run in any order; whatever it was, the last snapshot asked for is on disk
    assert len(asked) == 20
    assert file.load() == {"n": asked[-1]}
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert [p.name for p in file.path.parent.iterdir()] == ["paired.json"]  # no temp files


async def test_a_corrupt_file_is_set_aside_not_overwritten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pending.json"
    path.write_text('{"half": ')
    file = StateFile(path)
    with caplog.at_level(logging.WARNING):
        assert file.load() is None
    [aside] = corrupt_copies(tmp_path)
    assert aside.read_text() == '{"half": '
    assert "not valid JSON" in caplog.text
    assert await file.save({"fresh": True})
    assert file.load() == {"fresh": True}


async def test_an_unreadable_file_is_never_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "paired.json"
    path.mkdir()  # reading it fails with something other than "not found"
    file = StateFile(path)
    with caplog.at_level(logging.ERROR):
        assert file.load() is None
        assert await file.save({"x": 1}) is False
    assert path.is_dir()
    assert "cannot read" in caplog.text
    assert "not writing" in caplog.text


async def test_a_failed_write_is_logged_and_survived(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "nodes"
    blocker.write_text("a file where the folder should be")
    file = StateFile(blocker / "paired.json")
    assert file.load() is None
    with caplog.at_level(logging.ERROR):
        assert await file.save({"x": 1}) is False
    assert "could not write" in caplog.text
    blocker.unlink()
    assert await file.save({"x": 2})  # the next save writes the whole document
    assert file.load() == {"x": 2}


async def test_records_that_no_longer_parse_are_skipped(tmp_path: Path) -> None:
    from gateway.protocol.nodes import PendingNodeRequest

    path = tmp_path / "pending.json"
    path.write_text(
        '{"a": {"requestId": "a", "nodeId": "n", "isRepair": false, "ts": 1},'
        ' "b": {"requestId": "b"}}'
    )
    records = StateFile(path).load_records(PendingNodeRequest, lambda r: r.request_id)
    assert list(records) == ["a"]
