"""Where the file log lives and which files rotation keeps. Pure: names in, decisions out.

Files are ``<stem>-YYYY-MM-DD.log`` (host-local date), one per day; when one outgrows
``logging.maxFileBytes`` it is renamed ``<stem>-YYYY-MM-DD.log.1`` (the previous ``.1``
becomes ``.2``, ...) and a fresh file starts. Retention is a count: at most
``logging.maxFiles`` files of this stem are kept, newest first, so the disk the log can
use is bounded by ``maxFiles * maxFileBytes``.

``logging.file``: unset -> ``<state dir>/logs/smart-agent-neo[-<profile>]-DATE.log``; a path
whose name has an extension (``/var/log/neo/gateway.log``) names the file, and the date goes
before the extension (``gateway-DATE.log``); any other path is the directory. Relative paths
are taken from the state dir.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path, PurePath

import attrs

PRODUCT = "smart-agent-neo"
_DATE = r"(\d{4})-(\d{2})-(\d{2})"


@attrs.frozen
class LogTarget:
    directory: Path
    stem: str
    suffix: str = ".log"

    def dated(self, day: date) -> Path:
        return self.directory / self.dated_name(day)

    def dated_name(self, day: date) -> str:
        return f"{self.stem}-{day.isoformat()}{self.suffix}"

    def archive_name(self, day: date, index: int) -> str:
        return f"{self.dated_name(day)}.{index}"

    def _pattern(self) -> re.Pattern[str]:
        return re.compile(
            re.escape(self.stem) + "-" + _DATE + re.escape(self.suffix) + r"(?:\.(\d+))?"
        )

    def parse(self, name: str) -> tuple[date, int] | None:
        """``(day, archive index)`` of one of our file names (index 0 = the live file)."""
        match = self._pattern().fullmatch(name)
        if match is None:
            return None
        try:
            day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            return None
        return day, int(match.group(4) or 0)


def target_for(state_dir: Path, profile: str | None, configured: str | None) -> LogTarget:
    default_stem = PRODUCT + (f"-{profile}" if profile else "")
    if configured is None:
        return LogTarget(state_dir / "logs", default_stem)
    path = Path(configured).expanduser()
    if not path.is_absolute():
        path = state_dir / path
    if PurePath(path.name).suffix and not configured.endswith(("/", "\\")):
        return LogTarget(path.parent, path.stem, path.suffix)
    return LogTarget(path, default_stem)


def _age_order(parsed: tuple[date, int]) -> tuple[date, int]:
    day, index = parsed
    return day, -index  # within a day, .2 is older than .1, which is older than the live file


def plan_prune(target: LogTarget, names: Iterable[str], keep: int) -> list[str]:
    """The names to delete so that at most ``keep`` of ours remain (oldest go first)."""
    ours = [(parsed, name) for name in names if (parsed := target.parse(name)) is not None]
    ours.sort(key=lambda item: _age_order(item[0]), reverse=True)
    return [name for _, name in ours[max(keep, 1) :]]


def archive_shifts(target: LogTarget, day: date, names: Iterable[str]) -> list[tuple[str, str]]:
    """Renames that make room for ``.1``: ``.k`` -> ``.k+1``, highest first, then live -> ``.1``."""
    indexes = sorted(
        (parsed[1] for name in names if (parsed := target.parse(name)) and parsed[0] == day),
        reverse=True,
    )
    moves = [
        (target.archive_name(day, i), target.archive_name(day, i + 1)) for i in indexes if i > 0
    ]
    if 0 in indexes:
        moves.append((target.dated_name(day), target.archive_name(day, 1)))
    return moves


def newest_live(target: LogTarget, names: Iterable[str], today: date) -> str | None:
    """The file ``logs.tail`` reads: today's, else the most recent dated one (not archives)."""
    live = [
        (parsed[0], name)
        for name in names
        if (parsed := target.parse(name)) is not None and parsed[1] == 0
    ]
    if not live:
        return None
    todays = target.dated_name(today)
    if any(name == todays for _, name in live):
        return todays
    return max(live)[1]
