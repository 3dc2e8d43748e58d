"""Which file a canvas URL names, and the answer for it (CONTROL-UI.md 7). Blocking I/O:
call from a worker thread.

Paths are decoded and normalised; any ``..`` segment, a symlink anywhere on the way, or a
real path outside the root is 404 -- a page in the canvas can never read the rest of the
disk. A directory serves its ``index.html``; served HTML gets the live-reload script.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote

import attrs

from . import snippet

PREFIX = "/__smart-agent-neo__/canvas"
A2UI_PREFIX = "/__smart-agent-neo__/a2ui"
INDEX = "index.html"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
MAX_FILE_BYTES = 50 * 1024 * 1024

SCAFFOLD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Canvas</title>
<style>
  body { margin: 0; min-height: 100vh; display: grid; place-items: center;
         font: 16px/1.5 system-ui, sans-serif; background: #0f1117; color: #e7e9f0; }
  main { max-width: 520px; padding: 32px; text-align: center; }
  h1 { font-size: 28px; margin: 0 0 8px; }
  code { background: #1e222c; padding: 2px 6px; border-radius: 6px; }
  p { color: #98a0b3; }
</style>
</head>
<body>
<main>
  <h1 data-testid="canvas-title">Canvas ready</h1>
  <p>This page is served by the smart-agent-neo canvas host. Edit
  <code>index.html</code> in the canvas folder (or add files beside it): open pages reload by
  themselves when a file changes.</p>
</main>
</body>
</html>
"""


@attrs.frozen
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: tuple[tuple[bytes, bytes], ...] = ()


def ensure_root(root: Path) -> None:
    """Create the canvas folder and a scaffold ``index.html`` if either is missing."""
    root.mkdir(parents=True, exist_ok=True)
    index = root / INDEX
    if not index.exists():
        index.write_text(SCAFFOLD, encoding="utf-8")


def resolve(root: Path, rel: str) -> Path | None:
    """The real file or folder under ``root`` that ``rel`` (URL-decoded, no leading ``/``)
    names, or ``None`` if it escapes the root, goes through a symlink or has a NUL."""
    if "\x00" in rel or "\\" in rel:
        return None
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    real_root = root.resolve()
    current = real_root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return None
    if not current.resolve().is_relative_to(real_root):
        return None
    return current


def content_type(path: Path) -> str:
    if path.suffix.lower() in (".html", ".htm"):
        return HTML
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
        guessed += "; charset=utf-8"
    return guessed


def respond(method: str, raw_path: str, root: Path, live_reload: bool) -> Response:
    """The answer for one HTTP request to the canvas host."""
    path = unquote(raw_path)
    if method not in ("GET", "HEAD"):
        return Response(405, b"Method Not Allowed", headers=((b"allow", b"GET, HEAD"),))
    if path == snippet.WS_PATH:
        if live_reload:
            return Response(426, b"upgrade required", headers=((b"upgrade", b"websocket"),))
        return Response(404, b"Not Found")
    if path == A2UI_PREFIX or path.startswith(A2UI_PREFIX + "/"):
        return Response(503, b"A2UI assets not found")
    if path == PREFIX:
        return Response(302, b"", headers=((b"location", (PREFIX + "/").encode()),))
    if not path.startswith(PREFIX + "/"):
        return Response(404, b"Not Found")
    rel = path[len(PREFIX) + 1 :]
    try:
        target = resolve(root, rel)
        if target is None:
            return Response(404, b"not found")
        if target.is_dir() or rel == "" or rel.endswith("/"):
            # a folder's URL (existing or not) wants its index.html: say which file to create
            index = target / INDEX
            if not index.is_file() or index.is_symlink():
                missing = f"<!doctype html><p>Missing file. Create {root / rel / INDEX}</p>"
                return Response(404, missing.encode(), HTML)
            target = index
        if not target.is_file():
            return Response(404, b"not found")
        if target.stat().st_size > MAX_FILE_BYTES:
            return Response(404, b"not found")
        body = target.read_bytes()
    except OSError:
        return Response(500, b"error")
    kind = content_type(target)
    if kind == HTML:
        body = snippet.inject(body.decode("utf-8", errors="replace"), live_reload).encode()
    return Response(200, body, kind)
