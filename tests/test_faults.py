"""Clean faults (issue 16): a read-only, vanished or full state dir and an unreadable config
give one clear line and the documented exit code (0 on a clean stop), never a traceback.

The state dir is made read-only the way it happens to people -- for root (CI) a read-only
bind mount in a private mount namespace (``unshare -m``; ``nsenter`` to remount it while the
gateway runs), for anyone else ``chmod`` -- and a full disk is a tiny tmpfs (root only).
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from gateway.supervisor import Supervisor

from .conftest import handshake, open_raw
from .test_cli_process import Proc, cli_env, ctrl_c_works
from .test_supervisor import supervised

ROOT = os.geteuid() == 0
CONFIG = '{"gateway": {"mode": "local", "auth": {"token": "tok-faults-0123456789"}}, ' + (
    '"canvasHost": {"enabled": false}}'
)
# run "$@" in a private mount namespace where $D is its own (bind) mount: read-only at once
# when RO=1; remountable later with nsenter; with SIZE, a tmpfs of that size instead
NAMESPACE = (
    'if [ -n "$SIZE" ]; then mount -t tmpfs -o size="$SIZE" tmpfs "$D" || exit 97; '
    'else mount --bind "$D" "$D" || exit 97; fi; '
    'if [ "$RO" = 1 ]; then mount -o remount,bind,ro "$D" || exit 97; fi; exec "$@"'
)


def _namespaces_work() -> bool:
    if not ROOT or not shutil.which("unshare") or not shutil.which("nsenter"):
        return False
    done = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return done.returncode == 0


NAMESPACES = _namespaces_work()


def state_dir(home: Path) -> Path:
    state = home / ".smart-agent-neo"
    state.mkdir(parents=True, exist_ok=True)
    (state / "smart-agent-neo.json").write_text(CONFIG)
    return state


def command(state: Path, *args: str, read_only: bool = False, size: str = "") -> list[str]:
    gateway = [sys.executable, "-m", "gateway", *args]
    if not NAMESPACES:
        if size:
            pytest.skip("a full disk needs a tmpfs: root only")
        if read_only:
            state.chmod(0o500)
        return gateway
    return ["unshare", "-m", "sh", "-c", NAMESPACE, "sh", *gateway]


def namespace_env(
    home: Path, state: Path, read_only: bool = False, size: str = ""
) -> dict[str, str]:
    return cli_env(home, D=str(state), RO="1" if read_only else "0", SIZE=size)


def make_read_only(proc: Proc, state: Path) -> None:
    """The state dir turns read-only under a running gateway (a disk remounted ro)."""
    if NAMESPACES:
        # a fresh read-only bind mount over it: what is already open stays writable (as on
        # a real remount), every new open -- temp files, the lock's unlink -- is refused
        remount = f'mount --bind "{state}" "{state}" && mount -o remount,bind,ro "{state}"'
        subprocess.run(
            ["nsenter", "-t", str(proc.process.pid), "-m", "sh", "-c", remount], check=True
        )
    else:
        for path in state.iterdir():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
        state.chmod(0o500)


@asynccontextmanager
async def gateway(home: Path, state: Path, **how: str) -> AsyncIterator[Proc]:
    process = await trio.lowlevel.open_process(
        command(state, "gateway", "--port", "0"),
        env=namespace_env(home, state, size=how.get("size", "")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=ctrl_c_works,
    )
    proc = Proc(process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proc.pump)
        try:
            await proc.wait_for("Ctrl-C")
            yield proc
        finally:
            if process.returncode is None:
                process.kill()
            with trio.move_on_after(10):
                await process.wait()
            nursery.cancel_scope.cancel()
            await trio.Path(state).chmod(0o700)


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert "Error:" not in text.replace("Gateway failed", ""), text


async def test_a_read_only_state_dir_at_start_is_one_clear_line(tmp_path: Path) -> None:
    """Issue 16, medium 7: starting on a read-only state dir printed a raw traceback."""
    state = state_dir(tmp_path)
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            command(state, "gateway", "--port", "0", read_only=True),
            env=namespace_env(tmp_path, state, read_only=True),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )
    state.chmod(0o700)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Gateway failed to start: cannot create the gateway lock ")
    assert f"(the state directory {state} must be writable)" in lines[0]
    assert_no_traceback(done.stdout + done.stderr)


async def test_sigterm_with_a_read_only_state_dir_exits_zero(tmp_path: Path) -> None:
    """Issue 16, medium 7: a state dir gone read-only made SIGTERM exit 1 with a traceback
    (releasing the lock); under systemd that is a failure and a restart."""
    state = state_dir(tmp_path)
    async with gateway(tmp_path, state) as proc:
        await trio.to_thread.run_sync(make_read_only, proc, state)
        code, _ = await proc.stop()
        text = await proc.all_output()
    assert code == 0, text
    assert_no_traceback(text)


async def test_sigterm_after_the_state_dir_vanished_exits_zero(tmp_path: Path) -> None:
    state = state_dir(tmp_path)
    async with gateway(tmp_path, state) as proc:
        await trio.to_thread.run_sync(lambda: shutil.rmtree(state))
        code, _ = await proc.stop()
        text = await proc.all_output()
        state.mkdir(exist_ok=True)  # for the cleanup (the gateway may have made it again)
    assert code == 0, text
    assert_no_traceback(text)


async def test_a_full_disk_is_survived_with_a_warning(tmp_path: Path) -> None:
    """A full state disk: the gateway serves (degraded beats dead), says what it could not
    write, and stops cleanly."""
    state = tmp_path / ".smart-agent-neo"
    state.mkdir()
    prepare = f'printf %s \'{CONFIG}\' > "$D/smart-agent-neo.json"; cat /dev/zero > "$D/fill" 2>/dev/null; '
    script = NAMESPACE.replace('exec "$@"', prepare + 'exec "$@"')
    if not NAMESPACES:
        pytest.skip("a full disk needs a tmpfs: root only")
    process = await trio.lowlevel.open_process(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-m",
            "gateway",
            "gateway",
            "--port",
            "0",
        ],
        env=namespace_env(tmp_path, state, size="256k"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=ctrl_c_works,
    )
    proc = Proc(process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proc.pump)
        await proc.wait_for("Ctrl-C")
        code, _ = await proc.stop()
        text = await proc.all_output()
    assert code == 0, text
    assert "No space left on device" in text
    assert_no_traceback(text)


async def test_an_edit_made_while_the_config_was_unreadable_applies_after_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 (low): an edit saved while the config was unreadable was never picked up
    after ``chmod`` (only the change time moves). As root, a mode without read bits is made
    unreadable the way it is for everyone else."""
    if ROOT:
        real = Path.read_text

        def read_text(self: Path, *args: object, **kwargs: object) -> str:
            if self.name == "smart-agent-neo.json" and not self.stat().st_mode & stat.S_IRUSR:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Path, "read_text", read_text)
    lc: Supervisor
    async with supervised(tmp_path) as (lc, config):
        running = await lc.wait_started(1)
        path = config.path
        body = path.read_text().replace('"reload"', '"ws": {"tickIntervalMs": 4321}, "reload"')
        path.chmod(0o200)  # write-only: the editor saves, nobody can read
        path.write_text(body)
        with trio.fail_after(10):
            await lc.wait_checked(1)
        assert running.runtime.settings.config.gateway.ws.tick_interval_ms != 4321
        path.chmod(0o600)
        with trio.fail_after(10):
            await lc.wait_checked(2)
        assert running.runtime.settings.config.gateway.ws.tick_interval_ms == 4321
        assert lc.generation == 1


def _limited_fds() -> None:
    ctrl_c_works()
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    )


def _hold_idle(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.2", 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        held.append(sock)
    return held


def _connect_ms(url: str, token: str) -> float:
    started = time.monotonic()
    with open_raw(url) as ws:
        assert handshake(ws, token=token)["ok"] is True
    return (time.monotonic() - started) * 1000


async def test_idle_sockets_at_the_file_limit_do_not_lock_out_a_normal_client(
    tmp_path: Path,
) -> None:
    """Issue 16, medium 6: with the common file limit of 1,024, 1,500 idle sockets from one
    address locked out a normal client until the timeout cleared them. Now the address's
    unauthenticated connections are capped and, at the file limit, new ones are refused at
    once: a normal client gets in (BENCHMARKS.md has the latency)."""
    state = state_dir(tmp_path)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "gateway", "gateway", "--port", "0"],
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_limited_fds,
    )
    proc = Proc(process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proc.pump)
        try:
            text = await proc.wait_for("Ctrl-C")
            port = int(text.split("ws://127.0.0.1:", 1)[1].split(" ", 1)[0])
            held = await trio.to_thread.run_sync(_hold_idle, port, 1500)
            try:
                with trio.fail_after(4):  # the keep-alive / handshake timeouts are longer
                    ms = await trio.to_thread.run_sync(
                        _connect_ms, f"ws://127.0.0.1:{port}", "tok-faults-0123456789"
                    )
            finally:
                for sock in held:
                    sock.close()
            assert ms < 4000
            code, _ = await proc.stop()
            assert code == 0
            assert "refused" in await proc.all_output()
        finally:
            if process.returncode is None:
                process.kill()
            nursery.cancel_scope.cancel()
    assert state.exists()
