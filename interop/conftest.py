"""Fixtures for ``nox -s interop``: the reference's own clients (installed by the session
from the npm registry, pinned) against our gateway on 127.0.0.1:0.

The session exports where it put them: ``SMART_AGENT_NEO_INTEROP_NODE`` (the Node binary)
and ``SMART_AGENT_NEO_INTEROP_PACKAGES`` (a directory whose ``node_modules`` holds
``openclaw`` and ``@openclaw/gateway-client``). Every reference process gets its own HOME,
and an HTTP(S) proxy that goes nowhere, so nothing it does can reach beyond loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from tests.conftest import (  # noqa: F401  (fixtures)
    TOKEN,
    _close_raw_clients,
    gateway,
    isolated_env,
    start_gateway,
)

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there


@attrs.frozen
class Reference:
    node: Path
    packages: Path

    @property
    def openclaw(self) -> Path:
        return self.packages / "node_modules" / "openclaw" / "openclaw.mjs"

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{self.node.parent}{os.pathsep}/usr/bin:/bin",
            "HOME": str(home),
            "NO_COLOR": "1",
            "NODE_USE_ENV_PROXY": "1",
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def reference() -> Reference:
    node = os.environ.get("SMART_AGENT_NEO_INTEROP_NODE")
    packages = os.environ.get("SMART_AGENT_NEO_INTEROP_PACKAGES")
    if not node or not packages:
        pytest.fail("the interop tests run under `nox -s interop`, which installs the reference")
    ref = Reference(Path(node), Path(packages))
    assert ref.node.exists(), ref.node
    assert ref.openclaw.exists(), ref.openclaw
    return ref


async def run(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 90
) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(timeout):
        return await trio.run_process(
            argv, env=env, cwd=str(cwd), capture_stdout=True, capture_stderr=True, check=False
        )


@asynccontextmanager
async def background(
    argv: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[trio.Process]:
    """A long-running reference process (its own process group), stopped on exit."""
    with log.open("wb") as out:
        process = await trio.lowlevel.open_process(
            argv,
            env=env,
            cwd=str(log.parent),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                break
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is not None:
                break
