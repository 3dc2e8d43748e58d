"""Doctor checks of the profile's files: config, permissions, token, state dir, lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from ..auth import load_or_create_token
from ..config.paths import ENV_PASSWORD, ENV_TOKEN, Paths
from ..fsutil import write_atomic
from ..lock import holder_alive, lock_path, read_lock
from ..lock import probe as probe_lock
from .checks import Check, Context
from .errors import ServiceError
from .spec import ENV_FILE_NAME

MINIMAL_CONFIG = '{\n  gateway: {\n    mode: "local",\n  },\n}\n'


def check_config(ctx: Context) -> Check:
    path = ctx.paths.config_path
    if ctx.config_error is not None:
        return Check("config.valid", "fail", str(ctx.config_error))
    loaded = ctx.loaded
    assert loaded is not None
    # a service installed with --allow-unconfigured runs without a local-mode config
    unconfigured_ok = ctx.installed is not None and ctx.installed.options.allow_unconfigured
    if not loaded.exists and unconfigured_ok:
        return Check(
            "config.valid", "ok", f"no config file at {path}; the service runs on embedded defaults"
        )
    if not loaded.exists:

        def create() -> str:
            if path.exists():  # written meanwhile: never replace a user's file
                return f"left {path} alone (it exists now)"
            write_atomic(path, MINIMAL_CONFIG, secret=True)
            return f'created {path} with gateway.mode "local" (0600)'

        return Check(
            "config.valid",
            "warn",
            f"no config file at {path}: `gateway run` starts only with --allow-unconfigured",
            create,
        )
    if loaded.warnings:
        return Check("config.valid", "warn", f"{path}: " + "; ".join(loaded.warnings))
    mode = loaded.config.gateway.mode
    if mode is None and not unconfigured_ok:
        return Check(
            "config.valid",
            "warn",
            f'{path} has no gateway.mode: add gateway: {{ mode: "local" }} so `gateway run` starts',
        )
    if mode == "remote":
        return Check(
            "config.valid",
            "ok",
            f"{path} is valid (remote mode: this CLI talks to a remote gateway)",
        )
    return Check("config.valid", "ok", f"{path} is valid")


def _secret_files(paths: Paths) -> list[Path]:
    return [paths.config_path, paths.token_file, paths.state_dir / ENV_FILE_NAME]


def check_permissions(ctx: Context) -> Check:
    loose: list[tuple[Path, int, int]] = []
    foreign: list[str] = []
    uid = ctx.host.uid
    for path, wanted in [(ctx.paths.state_dir, 0o700)] + [
        (p, 0o600) for p in _secret_files(ctx.paths)
    ]:
        try:
            info = path.stat()
        except OSError:
            continue
        if info.st_uid != uid:
            foreign.append(f"{path} belongs to uid {info.st_uid}")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            loose.append((path, mode, wanted))
    if foreign:
        return Check("config.permissions", "fail", "; ".join(foreign))
    if not loose:
        return Check(
            "config.permissions", "ok", "config, token and state dir are private (0600/0700)"
        )

    def tighten() -> str:
        done = []
        for path, mode, wanted in loose:
            os.chmod(path, wanted)
            done.append(f"chmod {wanted:o} {path} (was {mode:o})")
        return "; ".join(done)

    listing = ", ".join(f"{p} is {m:o}" for p, m, _ in loose)
    return Check("config.permissions", "warn", f"readable by others: {listing}", tighten)


def check_token(ctx: Context) -> Check:
    env = ctx.host.env
    auth = ctx.loaded.config.gateway.auth if ctx.loaded else None
    mode = auth.mode if auth else None
    token = (auth.token if auth else None) or env.get(ENV_TOKEN)
    password = (auth.password if auth else None) or env.get(ENV_PASSWORD)
    if mode == "none":
        return Check(
            "auth.token",
            "warn",
            "auth is off (gateway.auth.mode=none): any local process can control the gateway",
        )
    if mode == "password" or (mode is None and password):  # as settings.py resolves it
        if password:
            return Check("auth.token", "ok", "password auth is configured")
        return Check("auth.token", "fail", "gateway.auth.mode is password but no password is set")
    if token:
        return Check("auth.token", "ok", "a gateway token is configured")
    token_file = ctx.paths.token_file
    try:
        stored = token_file.read_text().strip()
    except OSError:
        stored = ""
    if stored:
        return Check("auth.token", "ok", f"generated token stored in {token_file}")

    def generate() -> str:
        load_or_create_token(token_file)
        return f"generated a gateway token in {token_file} (0600)"

    return Check("auth.token", "warn", f"no gateway token yet ({token_file} missing)", generate)


def check_state_dir(ctx: Context) -> Check:
    state = ctx.paths.state_dir
    if not state.exists():

        def create() -> str:
            state.mkdir(parents=True, exist_ok=True, mode=0o700)
            return f"created {state} (0700)"

        return Check("state.writable", "warn", f"state dir {state} does not exist yet", create)
    if not state.is_dir():
        return Check("state.writable", "fail", f"state dir {state} is not a directory")
    if not os.access(state, os.W_OK | os.X_OK):
        return Check(
            "state.writable", "fail", f"state dir {state} is not writable by {ctx.host.user}"
        )
    return Check("state.writable", "ok", f"state dir {state} is writable")


def check_lock(ctx: Context) -> Check:
    path = lock_path(ctx.paths)
    state = probe_lock(path)
    if state == "free":
        return Check("lock.stale", "ok", "no gateway lock file")
    if state == "held":
        info = read_lock(path)
        who = f"pid {info.pid}" if info and holder_alive(info) else "a live process"
        return Check("lock.stale", "ok", f"lock held by a running gateway ({who})")
    return Check(
        "lock.stale",
        "warn",
        f"leftover lock file {path} (no process holds it)",
        lambda: remove_leftover_lock(path),
    )


def remove_leftover_lock(path: Path) -> str:
    """Delete a lock file only while holding its flock ourselves: a gateway that starts in the
    meantime either holds it (we refuse) or takes the new file after we unlink this inode."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return f"{path} was already gone"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServiceError(f"{path} is now held by a running gateway; left alone") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
    finally:
        os.close(fd)
    return f"removed leftover lock file {path}"
