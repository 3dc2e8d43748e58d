"""Reading file-log lines back for people: parse (ours or OpenClaw's format), render, JSON.

``parse_line`` understands our keys (``time``, ``level``, ``subsystem``, ``message``; ``ts``/``msg`` from older files) and the
reference's (``time``, ``_meta.logLevelName``, ``_meta.name``, ``"0"``...), so ``logs`` also
reads a file written by an older or foreign gateway. Pure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
from rich.text import Text

_OURS = frozenset({"ts", "time", "level", "subsystem", "msg", "message", "_meta"})
_LEVEL_STYLE = {"warn": "yellow", "error": "bold red", "fatal": "bold red", "debug": "dim"}


@attrs.frozen
class ParsedLine:
    time: str | None
    level: str | None
    subsystem: str | None
    message: str
    fields: dict[str, Any]
    raw: str

    def record(self) -> dict[str, Any]:
        """The ``--json`` form: ``{"type": "log", ...}``."""
        out: dict[str, Any] = {"type": "log", "time": self.time, "level": self.level}
        out.update(subsystem=self.subsystem, message=self.message, raw=self.raw)
        if self.fields:
            out["fields"] = self.fields
        return out


def parse_line(raw: str) -> ParsedLine | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    raw_meta = obj.get("_meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    time = _str(obj.get("ts")) or _str(obj.get("time")) or _str(meta.get("date"))
    level = _str(obj.get("level")) or (_str(meta.get("logLevelName")) or "").lower() or None
    subsystem = _str(obj.get("subsystem")) or _meta_subsystem(meta.get("name"))
    numbered = [k for k in obj if k.isdigit()]
    message = _str(obj.get("msg")) or _str(obj.get("message"))
    if message is None:
        parts = [
            v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k in numbered
            if (v := obj[k]) is not None
        ]
        message = " ".join(parts)
    fields = {k: v for k, v in obj.items() if k not in _OURS and not k.isdigit()}
    return ParsedLine(time, level, subsystem, message, fields, raw)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _meta_subsystem(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    try:
        parsed = json.loads(name)
    except ValueError:
        return None
    return _str(parsed.get("subsystem")) if isinstance(parsed, dict) else None


def clock(iso: str | None, *, utc: bool) -> str:
    """``HH:MM:SS`` in local time (or UTC); the raw text if it is not ISO 8601."""
    if iso is None:
        return "--:--:--"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.astimezone()
    moment = moment.astimezone(UTC) if utc else moment.astimezone()
    return moment.strftime("%H:%M:%S") + ("Z" if utc else "")


def render_line(line: ParsedLine, *, utc: bool) -> Text:
    text = Text()
    text.append(clock(line.time, utc=utc), style="dim")
    if line.level and line.level != "info":
        text.append(f" {line.level}", style=_LEVEL_STYLE.get(line.level, ""))
    if line.subsystem:
        text.append(f" [{line.subsystem.rsplit('/', 1)[-1]}]", style="cyan")
    text.append(" " + line.message)
    error = line.fields.get("error")
    for key, value in line.fields.items():
        if key == "error" and isinstance(value, str):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        text.append(f" {key}={shown}", style="dim")
    if isinstance(error, str):
        text.append("\n" + error, style="red")
    return text
