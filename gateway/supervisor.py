"""The process lifetime: serve, hot-reload, restart in place, stop -- one owner for all of it.

    supervise()                          one nursery for the life of the process
    ├── watch_signals                    SIGTERM/SIGINT -> stop; SIGUSR1 -> restart
    ├── watch_config                     file change -> plan_reload -> hot-apply or restart
    └── generation N: serve(settings)    returns on stop or restart; then maybe N+1

A restart never spawns a process: the same PID closes its clients (``shutdown`` with
``restartExpectedMs``, then 1012), re-reads the config, rebinds (on the new port if it moved)
and serves again. Requests for a restart that arrive while one is under way coalesce -- the
next generation reads the latest config anyway -- and a stop always wins over a restart.

The config on disk is never written here. An invalid edit leaves the gateway on its last
good settings and is reported (log + ``status``) until a good version appears.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path

import attrs
import trio

from . import observe
from .app import Running, serve
from .config.reload import merge_paths, plan_reload
from .config.settings import Settings
from .config.watch import signature, wait_for_change
from .errors import GatewayError, StartupError
from .runtime import ProcessState, wall_ms

log = logging.getLogger("gateway")

Reread = Callable[[], Settings]
_OUTCOMES = {
    "invalid": "invalid",
    "ignore": "off",
    "restart": "restart",
    "hot": "hot",
    "skipped": "skipped",
}
MISSING_RETRIES = 2
MISSING_RETRY_S = 0.15


@attrs.define(eq=False)
class Supervisor:
    """Shared between the watchers and the serve loop."""

    settings: Settings
    reread: Reread
    process: ProcessState = attrs.field(factory=ProcessState)
    running: Running | None = None
    last_good: Settings | None = None
    stopping: bool = False
    generation: int = 0
    checks: int = 0  # config file versions examined by the watcher (valid or not)
    changed_paths: list[str] = attrs.field(factory=list)  # of the last change (none: invalid)
    _started: trio.Event = attrs.field(factory=trio.Event)
    _checked: trio.Event = attrs.field(factory=trio.Event)

    def request_stop(self, reason: str = "gateway stopping") -> None:
        self.stopping = True
        if self.running is not None:
            self.running.runtime.request_stop(reason)

    def request_restart(self, reason: str = "gateway restarting") -> bool:
        """``False`` when coalesced into a restart (or stop) already under way."""
        if self.stopping or self.running is None:
            return False
        return self.running.runtime.request_restart(reason)

    async def wait_started(self, generation: int) -> Running:
        while self.generation < generation or self.running is None:
            self._started = trio.Event()
            await self._started.wait()
        return self.running

    async def wait_checked(self, count: int) -> None:
        """Until the watcher has examined ``count`` versions of the config file."""
        while self.checks < count:
            self._checked = trio.Event()
            await self._checked.wait()

    def _serving(self, running: Running) -> None:
        self.running = running
        self.generation += 1
        self._started.set()


async def supervise(
    settings: Settings,
    reread: Reread,
    *,
    handle_signals: bool = False,
    on_serving: Callable[[Running, int], None] | None = None,
    on_draining: Callable[[Running], None] | None = None,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run generations of serve() until a stop. ``reread`` loads and resolves the config again
    (with the same command-line overrides); it raises GatewayError when the file is invalid.
    ``on_serving`` runs when a generation is bound and serving, ``on_draining`` when its stop
    or restart begins (the CLI tells systemd READY/RELOADING/STOPPING there).

    Raises the first generation's StartupError (port in use, ...) before reporting started.
    """
    lc = Supervisor(settings, reread)
    async with trio.open_nursery() as nursery:
        if handle_signals:
            # start(), not start_soon(): until the receiver is installed, a SIGINT would
            # surface as KeyboardInterrupt in whatever runs next (the banner)
            await nursery.start(watch_signals, lc)
        reported = False
        while not lc.stopping:
            async with trio.open_nursery() as generation:
                running = await _start_generation(generation, lc)
                lc._serving(running)
                if on_serving is not None:
                    on_serving(running, lc.generation)
                if on_draining is not None:
                    generation.start_soon(_when_draining, running, on_draining)
                if not reported:
                    await nursery.start(watch_config, lc)
                    task_status.started(lc)
                    reported = True
                if lc.stopping:
                    running.runtime.request_stop()
            rt = running.runtime
            lc.running = None
            if not rt.restart_requested or lc.stopping:
                break
            observe.restarting(rt, rt.stop_reason)
            lc.process.restarts += 1
            lc.settings = _next_settings(lc)
        nursery.cancel_scope.cancel()


async def _start_generation(generation: trio.Nursery, lc: Supervisor) -> Running:
    start = partial(serve, process=lc.process)
    try:
        running: Running = await generation.start(start, lc.settings)
    except StartupError as exc:
        last_good = lc.last_good
        if last_good is None or last_good == lc.settings:
            raise
        # The restart cannot bind with the new settings (port taken, ...): degraded beats
        # dead -- serve on the last settings that worked and say why.
        lc.process.config_problem = (
            f"cannot apply the new config: {exc}; serving on the previous one"
        )
        log.error("%s", lc.process.config_problem)
        lc.settings = last_good
        running = await generation.start(start, lc.settings)
    lc.last_good = lc.settings
    return running


async def _when_draining(running: Running, callback: Callable[[Running], None]) -> None:
    await running.runtime.stop_requested.wait()
    callback(running)


def _reread(lc: Supervisor, if_invalid: str) -> Settings | None:
    """The config file as it is now; ``None`` if it is invalid, which is recorded in
    ``ProcessState.config_problem`` (shown by ``status``) and logged after ``if_invalid``."""
    try:
        fresh = lc.reread()
    except GatewayError as exc:
        lc.process.config_problem = str(exc)
        log.error("%s: %s", if_invalid, exc)
        return None
    lc.process.config_problem = None
    return fresh


def _next_settings(lc: Supervisor) -> Settings:
    """Re-read the config for the next generation (never replay the boot snapshot)."""
    fresh = _reread(lc, "config invalid at restart; keeping the last good config")
    return lc.settings if fresh is None else fresh


async def watch_signals(
    lc: Supervisor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            log.info("signal %s received", name)  # OPERATIONS.md C.6/D.4, then what it does
            if lc.stopping:
                log.info("received %s during shutdown; ignoring", name)
                continue
            if signum != signal.SIGUSR1:
                log.info("received %s; shutting down", name)
                lc.request_stop()
                continue
            if not lc.settings.config.commands.restart:
                restart = lc.settings.paths.cli("gateway call restart")
                log.warning(
                    "SIGUSR1 restart ignored (not authorized; enable commands.restart "
                    f"or use `{restart}`)"
                )
                continue
            log.info("received SIGUSR1; restarting")
            if not lc.request_restart("gateway restarting"):
                log.info("restart already under way; SIGUSR1 coalesced")


async def watch_config(
    lc: Supervisor, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Reload on change. Reports started once the baseline is taken, so no edit made after
    that can be missed. Cancellation: between polls; an apply is synchronous."""
    path = lc.settings.paths.config_path
    seen = signature(path)
    last_text = _read(path)
    task_status.started()
    while True:
        seen = await wait_for_change(path, seen, lambda: _debounce_s(lc))
        text = _read(path)
        for attempt in range(1, MISSING_RETRIES + 1):
            if not isinstance(text, FileNotFoundError):
                break
            log.info("config reload retry (%d/%d): config file not found", attempt, MISSING_RETRIES)
            await trio.sleep(MISSING_RETRY_S)
            text = _read(path)
        if isinstance(text, OSError):
            # unreadable (permissions, an I/O error) or gone: keep serving; the next change
            # -- a chmod included -- reads it again, and an edit made meanwhile applies then
            why = (
                "config file not found"
                if isinstance(text, FileNotFoundError)
                else (f"cannot read the config file: {text.strerror or text}")
            )
            log.warning("config reload skipped (%s)", why)
            lc.checks += 1
            lc._checked.set()
            continue
        if text == last_text:
            continue  # touched or rewritten with the same content
        last_text = text
        outcome = apply_change(lc)
        if lc.running is not None and outcome != "nothing":
            observe.config_reloaded(lc.running.runtime, _OUTCOMES[outcome], lc.changed_paths)
        lc.checks += 1
        lc._checked.set()


def apply_change(lc: Supervisor) -> str:
    """Validate, plan and apply the config file as it is now; returns what happened:
    nothing | invalid | ignore (mode off) | restart | hot | skipped (hot mode, nothing
    hot-safe in the change)."""
    fresh = _reread(lc, "config reload skipped (invalid config)")
    if fresh is None:
        lc.changed_paths = []  # an invalid file has no changed paths to report
        return "invalid"
    plan = plan_reload(lc.settings.config, fresh.config)
    lc.changed_paths = plan.paths
    decision = plan.decision
    if decision == "nothing":
        return decision
    log.info("config change detected; evaluating reload (%s)", ", ".join(plan.paths))
    lc.process.reloads += 1
    lc.process.last_reload_ms = wall_ms()
    if decision == "ignore":
        log.info("config reload disabled (gateway.reload.mode=off)")
        return decision
    if decision == "restart":
        if lc.request_restart("config change requires restart"):
            log.info("config change requires gateway restart (%s)", ", ".join(plan.needs_restart))
        return decision
    applied = fresh
    if plan.needs_restart:  # hot mode: apply the hot part, leave the rest for a manual restart
        log.warning(
            "config reload requires gateway restart; hot mode ignoring (%s)",
            ", ".join(plan.needs_restart),
        )
        if not plan.hot:
            return "skipped"  # nothing was applied: say nothing more
        applied = attrs.evolve(
            lc.settings, config=merge_paths(lc.settings.config, fresh.config, plan.hot)
        )
    lc.settings = applied
    if lc.running is not None:
        lc.running.runtime.apply_settings(applied)
    if plan.hot:
        log.info("config hot reload applied (%s)", ", ".join(plan.hot))
    else:
        log.info("config change needs nothing applied (%s: read where used)", ", ".join(plan.paths))
    return decision


def _debounce_s(lc: Supervisor) -> float:
    return lc.settings.config.gateway.reload.debounce_ms / 1000


def _read(path: Path) -> str | OSError:
    """The config file's text, or why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return exc
