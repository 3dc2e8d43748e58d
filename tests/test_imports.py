"""The import graph issue 11 drew (ARCHITECTURE.md, module map), read from the source.

* ``protocol/`` is sans-IO: it imports no I/O library and nothing of the gateway outside
  itself but the pure modules (errors, client addresses, the origin policy, package data);
* service management never imports the CLI (target resolution left ``cli/``);
* logs, metrics and the agent's tools take narrow protocols, not the ``Runtime``;
* ``health.py`` is handed the heartbeat's view (the heartbeat lives in ``agent/``);
* the hub (``events.py``) queues through ``outbox.py`` beside it, not through ``server/``;
* no module is called ``lifecycle``: each is named for what it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).resolve().parent
PURE = ("gateway.protocol", "gateway.errors", "gateway.clientip", "gateway.origins")
IO_LIBRARIES = {"trio", "hypercorn", "websockets", "h11", "httpx", "socket", "sqlite3"}


def module_name(path: Path) -> str:
    parts = ("gateway", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


def imports() -> dict[str, set[str]]:
    """Module -> every module it imports (``from x import y`` counts as x and x.y)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = found
    return graph


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_protocol_is_sans_io() -> None:
    for name, targets in imports().items():
        if not under(name, "gateway.protocol"):
            continue
        for target in targets:
            assert target.split(".")[0] not in IO_LIBRARIES, f"{name} imports {target}"
            if target.startswith("gateway."):
                allowed = under(target, *PURE, "gateway.packagedata")
                assert allowed, f"{name} imports {target}"


def test_the_edges_issue_11_removed_stay_removed() -> None:
    graph = imports()
    for name, targets in graph.items():
        if under(name, "gateway.service"):
            assert not any(under(t, "gateway.cli") for t in targets), name
        if under(name, "gateway.logs", "gateway.metrics", "gateway.agent.tools"):
            assert not any(under(t, "gateway.runtime") for t in targets), name
    assert not any(under(t, "gateway.agent.heartbeat") for t in graph["gateway.health"])
    assert "gateway.outbox" in graph["gateway.events"]
    assert not any(under(t, "gateway.server") for t in graph["gateway.events"])
    assert not [name for name in graph if name.rsplit(".", 1)[-1] == "lifecycle"]
