"""One log line as data, and its JSON-lines form. Pure: no I/O, no clock.

A stdlib ``LogRecord`` becomes an :class:`Entry` (time, level, subsystem, message, fields);
``extra={...}`` keys of the logging call are the fields. The file line carries the keys our
readers use (``time``, ``level``, ``subsystem``, ``message``, then the fields: the layout
OPERATIONS.md H.2 chose for this project) plus the keys OpenClaw's log readers look for
(``"0"`` and ``_meta``), so its Control UI and CLI can read our file through ``logs.tail`` too.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime

import attrs

TRACE = 5  # below logging.DEBUG; accepted as a level name, nothing in the gateway logs at it

# Level names as the config and the file use them (OPERATIONS.md H.1).
LEVELS: dict[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,  # above everything: the sink takes nothing
}

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_RESERVED = frozenset({"time", "level", "subsystem", "message", "0", "_meta"})


def level_no(name: str) -> int:
    return LEVELS[name]


def level_name(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "fatal"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug" if levelno >= logging.DEBUG else "trace"


# loggers whose subsystem is named without the "gateway/" prefix: the messaging channels
# (CHANNELS.md 7.3: ``channels``, ``channels/telegram``, ``channels/whatsapp``, ``outbox``)
_OWN_SUBSYSTEMS = ("gateway.channels", "gateway.outbox")


def subsystem(logger_name: str) -> str:
    """``gateway.ws`` -> ``gateway/ws`` (the reference's subsystem spelling);
    ``gateway.channels.telegram`` -> ``channels/telegram``, ``gateway.outbox`` -> ``outbox``."""
    for own in _OWN_SUBSYSTEMS:
        if logger_name == own or logger_name.startswith(own + "."):
            logger_name = logger_name[len("gateway.") :]
            break
    return logger_name.replace(".", "/")


def short_subsystem(name: str) -> str:
    """The console prefix: the last part (``gateway/ws`` -> ``ws``)."""
    return name.rsplit("/", 1)[-1]


@attrs.frozen
class Entry:
    time: float  # seconds since the epoch, as LogRecord.created
    levelno: int
    subsystem: str
    msg: str
    fields: dict[str, object] = attrs.field(factory=dict)
    # False for a line the terminal already shows in another form (the start banner):
    # ``log.info(..., extra={"_console": False})`` keeps it to the file
    console: bool = True

    @property
    def level(self) -> str:
        return level_name(self.levelno)

    def key(self) -> tuple[object, ...]:
        """What makes two lines "identical" for the repeat limiter: everything but the time."""
        return (self.levelno, self.subsystem, self.msg, _dumps(self.fields))


def from_record(record: logging.LogRecord) -> Entry:
    fields: dict[str, object] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        fields[key + "_" if key in _RESERVED else key] = value
    if record.exc_info and record.exc_info[1] is not None:
        fields["error"] = "".join(traceback.format_exception(record.exc_info[1])).rstrip()
    return Entry(
        record.created,
        record.levelno,
        subsystem(record.name),
        record.getMessage(),
        fields,
        console=getattr(record, "_console", True) is not False,
    )


def iso_time(ts: float) -> str:
    """Local time with its UTC offset and milliseconds: unambiguous and sortable per day."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def to_json_line(entry: Entry) -> str:
    ts = iso_time(entry.time)
    line: dict[str, object] = {
        "time": ts,
        "level": entry.level,
        "subsystem": entry.subsystem,
        "message": entry.msg,
    }
    line.update(entry.fields)
    line["0"] = entry.msg
    line["_meta"] = {
        "logLevelName": entry.level.upper(),
        "date": ts,
        "name": json.dumps({"subsystem": entry.subsystem}),
    }
    return _dumps(line) + "\n"


def _dumps(value: object) -> str:
    # default=str: a field may hold anything (a Path, an exception); the line must still be
    # written, so unknown objects are logged by their text rather than dropping the line.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
