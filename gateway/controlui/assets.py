"""The Control UI's files, read once and kept in memory (CONTROL-UI.md 1, 12).

The files ship inside the package (``gateway/controlui/static``); ``gateway.controlUi.root``
points at another folder instead. Everything is read when first asked for (in a worker
thread) and cached for the process's life, keyed by folder and base path: both change only
with a restart. ``index.html`` gets the base path in its ``<meta name="sa-base-path">``
(``__BASE_PATH__``) and in its asset URLs (``__BASE__``), so the page works under any ``basePath`` without a build step
and without an inline script.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import attrs

from ..errors import GatewayFault

INDEX = "index.html"
PLACEHOLDER = "__BASE__"
PATH_PLACEHOLDER = "__BASE_PATH__"
MAX_FILES = 500
MAX_TOTAL_BYTES = 20 * 1024 * 1024
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json; charset=utf-8",
}


@attrs.frozen
class Asset:
    body: bytes
    content_type: str
    etag: str


@attrs.frozen
class Assets:
    files: dict[str, Asset]
    source: str  # where they came from, for messages

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.files)

    @property
    def index(self) -> Asset:
        return self.files[INDEX]


class AssetsMissing(GatewayFault):
    """No usable ``index.html`` where the UI should be."""


def packaged_root() -> Traversable:
    return resources.files("gateway.controlui").joinpath("static")


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name.startswith(".") or child.name == "__pycache__":
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            out.extend(_walk(child, rel + "/"))
        elif child.is_file():
            out.append((rel, child))
    return out


def _walk_dir(root: Path) -> list[tuple[str, Path]]:
    """Regular files under ``root``; symlinks are not followed out of it."""
    real_root = root.resolve()
    out: list[tuple[str, Path]] = []
    for path in sorted(real_root.rglob("*")):
        rel = path.relative_to(real_root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if not path.resolve().is_relative_to(real_root):
            continue
        out.append((rel.as_posix(), path))
    return out


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def render_index(template: bytes, base: str) -> bytes:
    """``__BASE_PATH__`` -> the normalised base path (``/`` or ``/dash``: the value of
    ``<meta name="sa-base-path">``); ``__BASE__`` -> the prefix of asset URLs, with a trailing
    slash (``/`` or ``/dash/``). Both escaped."""
    path = html.escape(base or "/", quote=True)
    prefix = html.escape(f"{base}/", quote=True)
    body = template.replace(PATH_PLACEHOLDER.encode(), path.encode())
    return body.replace(PLACEHOLDER.encode(), prefix.encode())


def load(root: str | None, base: str) -> Assets:
    """Read every file (blocking: call it from a worker thread); :class:`AssetsMissing` when
    there is no ``index.html``."""
    if root is None:
        entries: list[tuple[str, Traversable | Path]] = list(_walk(packaged_root()))
        source = "the smart-agent-neo package"
    else:
        folder = Path(root).expanduser()
        if not (folder / INDEX).is_file():
            raise AssetsMissing(f"no {INDEX} in {folder}")
        entries = list(_walk_dir(folder))
        source = str(folder)
    files: dict[str, Asset] = {}
    total = 0
    for rel, node in entries[:MAX_FILES]:
        body = node.read_bytes()
        total += len(body)
        if total > MAX_TOTAL_BYTES:
            break
        if rel == INDEX:
            body = render_index(body, base)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[rel] = Asset(body, content_type(rel), etag)
    if INDEX not in files:
        raise AssetsMissing(f"no {INDEX} in {source}")
    return Assets(files, source)
