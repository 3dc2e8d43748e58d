"""Golden files: ``assert_golden(name, text)`` compares with ``tests/golden/<name>``.

Run with ``UPDATE_GOLDEN=1`` to (re)write the files after an intended change, then review
the diff like any other code change.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console, RenderableType

GOLDEN = Path(__file__).parent / "golden"
WIDTH = 100


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    expected = path.read_text()
    assert text == expected, f"{name} differs from the golden file (UPDATE_GOLDEN=1 to rewrite)"


def render_text(view: RenderableType) -> str:
    """What a terminal of WIDTH columns shows, without colour."""
    console = Console(width=WIDTH, record=True, no_color=True, highlight=False, file=io.StringIO())
    console.print(view)
    return console.export_text()
