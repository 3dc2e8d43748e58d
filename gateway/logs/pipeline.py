"""The process's log pipeline: stdlib records in, redacted lines out to the file and console.

::

    log.info("...", extra={...})  ->  LogPipeline.emit  (a logging.Handler on "gateway")
        Entry  ->  Redactor (the one redaction step)  ->  RepeatLimiter
            ->  FileSink     JSON lines, level logging.level
            ->  ConsoleSink  Rich, level logging.consoleLevel (debug with --verbose)

Who installs it: the process that owns the terminal and the state dir -- ``gateway run`` --
calls :func:`install` once; tests install it around an in-process gateway. serve() calls
:func:`attach` with its Runtime, after which the pipeline reads ``rt.settings`` on every line,
so a reloaded ``logging.*`` or token takes effect without a restart (the settings object is
compared by identity; recomputing costs nothing when it is unchanged). With nothing
installed, ``gateway`` records propagate to the root logger as before (pytest's capture).

A level change is noticed on the next line that reaches the handler; the reload that
changed it logs at info, which is such a line.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Callable
from typing import Protocol

import attrs
from rich.console import Console

from ..config.settings import Settings
from .console import ConsoleSink
from .entry import Entry, from_record, level_no, to_json_line
from .files import LogTarget, target_for
from .filesink import FileSink
from .redact import Redactor, compile_pattern, config_secrets, runtime_secrets
from .repeats import RepeatLimiter, Suppressed


class SettingsSource(Protocol):
    """What the pipeline reads its settings from (a Runtime; tests pass their own)."""

    @property
    def settings(self) -> Settings: ...


ROOT = "gateway"
ENV_LOG_LEVEL = "SMART_AGENT_NEO_LOG_LEVEL"


def log_target(settings: Settings) -> LogTarget:
    """Where this gateway's file log lives (also what ``logs.tail`` reads)."""
    paths = settings.paths
    return target_for(paths.state_dir, paths.profile, settings.config.logging.file)


def secrets_of(settings: Settings) -> set[str]:
    found = {s for s in (settings.auth.token, settings.auth.password) if s}
    found.update(config_secrets(settings.config))
    found.update(runtime_secrets()[1])
    return found


def extra_patterns(specs: list[str]) -> list[tuple[re.Pattern[str], int]]:
    """``logging.redactPatterns``, compiled (settings.resolve refused invalid ones)."""
    found = []
    for spec in specs:
        try:
            found.append(compile_pattern(spec))
        except ValueError:
            continue
    return found


class LogPipeline(logging.Handler):
    def __init__(
        self,
        settings: Settings,
        *,
        console: Console | None = None,
        verbose: bool = False,
        level: str | None = None,
        file: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(level=0)
        self._fallback = settings
        self._source: Callable[[], Settings] = lambda: self._fallback
        self._seen: Settings | None = None
        self._secrets_seen = -1
        self._verbose = verbose
        self._override = level
        self._clock = clock
        self._wall = wall
        self.console = ConsoleSink(console) if console is not None else None
        self.file = FileSink(self._file_problem) if file else None
        self.redactor = Redactor()
        self.limiter: RepeatLimiter[Entry] = RepeatLimiter(10, 60.0)
        self.file_level = logging.INFO
        self.console_level = logging.INFO
        self.internal_errors = 0
        self.refresh()

    # -- configuration ---------------------------------------------------------------------

    def follow(self, rt: SettingsSource) -> None:
        """Read settings from ``rt`` from now on (weakly: a finished Runtime falls back)."""
        ref = weakref.ref(rt)

        def source() -> Settings:
            current = ref()
            return current.settings if current is not None else self._fallback

        with self.lock or _NoLock():
            self._fallback = rt.settings
            self._source = source
            self._seen = None
        self.refresh()

    def refresh(self) -> None:
        settings = self._source()
        generation = runtime_secrets()[0]
        if settings is self._seen and generation == self._secrets_seen:
            return
        self._seen, self._secrets_seen = settings, generation
        cfg = settings.config.logging
        self.redactor = Redactor(secrets_of(settings), extra_patterns(cfg.redact_patterns))
        if self.console is not None:
            self.console.style = cfg.console_style or "pretty"
        self.limiter.configure(cfg.rate_limit.max_repeats, cfg.rate_limit.window_ms / 1000)
        self.file_level = level_no(self._override or cfg.level)
        console = level_no(self._override or cfg.console_level)
        self.console_level = min(console, logging.DEBUG) if self._verbose else console
        if self.file is not None:
            self.file.configure(log_target(settings), cfg.max_file_bytes, cfg.max_files)
        if _installed is self:  # a pipeline used on its own (tests) leaves the tree alone
            self._set_tree_level()

    def _set_tree_level(self) -> None:
        # Records below every sink's level are never created: debug logging costs nothing
        # unless a sink wants it.
        levels = [
            self.file_level if self.file else None,
            self.console_level if self.console else None,
        ]
        logging.getLogger(ROOT).setLevel(min((lv for lv in levels if lv is not None), default=100))

    # -- the handler -----------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.refresh()
            raw = from_record(record)
            entry = attrs.evolve(
                raw,
                msg=self.redactor.text(raw.msg),
                fields={k: self.redactor.value(v) for k, v in raw.fields.items()},
            )
            now = self._clock()
            for ended in self.limiter.due(now):
                self._write(self._summary(ended), now)
            if self.limiter.admit(entry.key(), entry, now):
                self._write(entry, now)
        except Exception:
            # Logging must never break the gateway; a bug here is counted, not raised.
            self.internal_errors += 1

    def _write(self, entry: Entry, now: float) -> None:
        if self.file is not None and entry.levelno >= self.file_level:
            self.file.write(to_json_line(entry), entry.time, now)
        if self.console is not None and entry.console and entry.levelno >= self.console_level:
            self.console.write(entry)

    def _summary(self, ended: Suppressed[Entry]) -> Entry:
        sample = ended.sample
        fields = dict(sample.fields)
        fields["suppressed"] = ended.count
        msg = f"{sample.msg} (and {ended.count} identical line(s) in {ended.window:g}s, suppressed)"
        return Entry(self._wall(), sample.levelno, sample.subsystem, msg, fields)

    def _file_problem(self, message: str) -> None:
        if self.console is not None:
            self.console.notice(message)

    def close(self) -> None:
        with self.lock or _NoLock():
            now = self._clock()
            for ended in self.limiter.due(now, flush=True):
                self._write(self._summary(ended), now)
            if self.file is not None:
                self.file.close()
        super().close()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_installed: LogPipeline | None = None


def install(
    settings: Settings,
    *,
    console: Console | None = None,
    verbose: bool = False,
    level: str | None = None,
    file: bool = True,
) -> LogPipeline:
    """Route the ``gateway`` loggers through a new pipeline (replacing any installed one)."""
    global _installed
    uninstall()
    pipeline = LogPipeline(settings, console=console, verbose=verbose, level=level, file=file)
    root = logging.getLogger(ROOT)
    root.handlers[:] = [pipeline]
    root.propagate = False
    _installed = pipeline
    pipeline._set_tree_level()
    return pipeline


def uninstall() -> None:
    """Close the installed pipeline and give ``gateway`` records back to the root logger."""
    global _installed
    pipeline, _installed = _installed, None
    if pipeline is None:
        return
    root = logging.getLogger(ROOT)
    if pipeline in root.handlers:
        root.removeHandler(pipeline)
    root.propagate = True
    root.setLevel(logging.NOTSET)
    pipeline.close()


def installed() -> LogPipeline | None:
    return _installed


def attach(rt: SettingsSource) -> None:
    """Called by serve(): the installed pipeline (if any) follows this Runtime's settings."""
    if _installed is not None:
        _installed.follow(rt)
