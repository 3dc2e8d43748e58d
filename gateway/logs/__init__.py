"""Logging: the JSON-lines file log, the console, redaction, rotation, and reading it back.

Modules (each owns one concern)::

    entry.py      one line as data, its JSON form, level names            (pure)
    redact.py     the one redaction function every sink's lines pass      (pure)
    repeats.py    rate limit for identical lines                          (pure)
    files.py      file naming, rotation and retention decisions           (pure)
    tail.py       logs.tail: reading from a cursor                        (pure + reader)
    filesink.py   appending, rotating, surviving a full disk              (I/O)
    console.py    terse Rich lines on stderr                              (I/O)
    pipeline.py   the logging.Handler tying them together; install/attach
"""

from .pipeline import ENV_LOG_LEVEL, LogPipeline, attach, install, installed, log_target, uninstall

__all__ = [
    "ENV_LOG_LEVEL",
    "LogPipeline",
    "attach",
    "install",
    "installed",
    "log_target",
    "uninstall",
]
