"""Helpers for tests of the log pipeline: install it around an in-process gateway, read it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console

from gateway import logs
from gateway.config.settings import Settings
from gateway.logs.pipeline import LogPipeline


@attrs.define
class Captured:
    pipeline: LogPipeline
    console: io.StringIO
    directory: Path

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.log*")) if self.directory.exists() else []

    def file_text(self) -> str:
        return "".join(p.read_text() for p in self.files())

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.file_text().splitlines() if line]

    def console_text(self) -> str:
        return self.console.getvalue()


@contextmanager
def capture_logs(
    settings: Settings, *, verbose: bool = True, level: str | None = None
) -> Iterator[Captured]:
    """Install the real pipeline (file under the settings' state dir + a console into memory)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, no_color=True, soft_wrap=True)
    pipeline = logs.install(settings, console=console, verbose=verbose, level=level)
    try:
        yield Captured(pipeline, buffer, logs.log_target(settings).directory)
    finally:
        logs.uninstall()
