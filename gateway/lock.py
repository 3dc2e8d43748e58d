"""One gateway per config file: a lock the kernel releases when the holder dies.

The truth is an ``flock`` on ``<state dir>/gateway.<hash of config path>.lock``: the kernel
drops it the moment the holding process exits for any reason (SIGKILL, OOM, power loss
followed by a reboot), so there is no stale lock to detect and no PID-reuse race -- a new
gateway simply takes it. The file's *content* (pid, process start time, a nonce, port) is
only for people and tools: it names the holder in ``gateway already running (pid N)``, lets
``--force`` verify that a port's owner really is our gateway, and lets ``doctor`` tell a
leftover file (harmless) from a live lock.

The lock is held across in-process restarts and released when the process exits.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from .config.paths import Paths
from .errors import EX_CONFIG, StartupError

log = logging.getLogger("gateway")


class LockHeldError(StartupError):
    """Another live gateway holds the lock for this config. Exit 78: restarting cannot help,
    so a supervisor with ``RestartPreventExitStatus=78`` does not loop on it."""

    exit_code = EX_CONFIG

    def __init__(self, info: LockInfo | None, path: Path) -> None:
        self.info = info
        self.path = path
        who = f"pid {info.pid}" if info else "pid unknown"
        super().__init__(f"gateway already running ({who}); lock {path}")


@attrs.frozen
class LockInfo:
    pid: int
    start_time: int | None
    nonce: str
    config_path: str
    port: int | None
    created_at: int
    # where a client on this machine reaches it (loopback for a gateway bound to all
    # addresses); None until the gateway is serving
    url: str | None = None


def lock_path(paths: Paths) -> Path:
    digest = hashlib.sha1(str(paths.config_path).encode()).hexdigest()[:8]
    return paths.state_dir / f"gateway.{digest}.lock"


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def read_lock(path: Path) -> LockInfo | None:
    try:
        data = json.loads(path.read_text())
        return LockInfo(
            pid=int(data["pid"]),
            start_time=data.get("startTime"),
            nonce=str(data["nonce"]),
            config_path=str(data["configPath"]),
            port=data.get("port"),
            created_at=int(data["createdAt"]),
            url=data.get("url"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holder_alive(info: LockInfo) -> bool:
    """Is the process named in the file the one that wrote it (not a reused PID)?"""
    start = process_start_time(info.pid)
    return start is not None and (info.start_time is None or start == info.start_time)


def running_holder(path: Path) -> LockInfo | None:
    """The live gateway holding the lock at ``path`` (as its file describes it), if any."""
    if probe(path) != "held":
        return None
    info = read_lock(path)
    return info if info is not None and holder_alive(info) else None


def probe(path: Path) -> Literal["free", "held", "leftover"]:
    """``held`` by a live gateway, a ``leftover`` file nobody holds, or ``free`` (no file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "free"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    finally:
        os.close(fd)
    return "leftover"


ENV_ALLOW_MULTI_GATEWAY = "SMART_AGENT_NEO_ALLOW_MULTI_GATEWAY"


class NoLock:
    """``SMART_AGENT_NEO_ALLOW_MULTI_GATEWAY=1`` (OPERATIONS.md D.1): no config lock, so
    several gateways may share one config (each on its own port; the exclusive bind still
    refuses a second one on the same port). Nothing is recorded, so the CLI finds such a
    gateway by its configured port only."""

    def serving(self, port: int, url: str) -> None:
        pass

    def release(self) -> None:
        pass


def acquire_for_run(paths: Paths, env: Mapping[str, str]) -> GatewayLock | NoLock:
    if env.get(ENV_ALLOW_MULTI_GATEWAY, "").strip().lower() in ("1", "true", "yes", "on"):
        log.info("%s is set: not taking the config lock", ENV_ALLOW_MULTI_GATEWAY)
        return NoLock()
    return GatewayLock.acquire(paths)


class GatewayLock:
    """The held lock. Keep it for the life of the process; ``release()`` on exit."""

    def __init__(self, path: Path, fd: int, info: LockInfo) -> None:
        self.path = path
        self._fd = fd
        self.info = info

    @classmethod
    def acquire(cls, paths: Paths, port: int | None = None) -> GatewayLock:
        """Take the lock, or raise :class:`LockHeldError`; a state dir where the lock file
        cannot even be created (read-only, missing permissions) is a :class:`StartupError`
        that names it -- one line, no traceback (issue 16)."""
        path = lock_path(paths)
        try:
            return cls._acquire(paths, path, port)
        except OSError as exc:
            raise StartupError(
                f"cannot create the gateway lock {path}: {exc.strerror or exc} (the state "
                f"directory {path.parent} must be writable)"
            ) from None

    @classmethod
    def _acquire(cls, paths: Paths, path: Path, port: int | None) -> GatewayLock:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockHeldError(read_lock(path), path) from None
            # The previous holder unlinks the file as it releases; if we locked that
            # unlinked inode, the path now names another file: start over on the new one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        pid = os.getpid()
        info = LockInfo(
            pid=pid,
            start_time=process_start_time(pid),
            nonce=secrets.token_hex(8),
            config_path=str(paths.config_path),
            port=port,
            created_at=int(time.time() * 1000),
        )
        lock = cls(path, fd, info)
        lock._write()
        return lock

    def serving(self, port: int, url: str) -> None:
        """Record where the gateway now listens (again after a restart that moved it)."""
        self.info = attrs.evolve(self.info, port=port, url=url)
        self._write()

    def _write(self) -> None:
        """Rewrite the holder info in place under the flock: readers that see a half-written
        file get None from read_lock() and fall back to "pid unknown", never a wrong pid.
        A full or read-only disk only costs the information (logged): the flock, which is
        what keeps a second gateway out, is held all the same."""
        try:
            self._write_info()
        except OSError as exc:
            log.warning("cannot record the lock holder in %s (%s)", self.path, exc.strerror)

    def _write_info(self) -> None:
        i = self.info
        data = {
            "pid": i.pid,
            "startTime": i.start_time,
            "nonce": i.nonce,
            "configPath": i.config_path,
            "port": i.port,
            "createdAt": i.created_at,
            "url": i.url,
        }
        payload = json.dumps(data).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, payload, 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Remove the file and drop the lock. Never raises: a read-only or vanished state
        dir at exit must not turn a clean stop into exit 1 (issue 16); the kernel drops the
        flock with the descriptor anyway, and a leftover file is harmless."""
        if self._fd < 0:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.info("lock file %s left in place (%s); it is harmless", self.path, exc.strerror)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = -1
