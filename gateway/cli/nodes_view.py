"""Terminal views of nodes and devices (``nodes ...``, ``devices ...``): Rich ``__rich__``.

They format what the gateway returned (``node.list``, ``node.pair.list``,
``device.pair.list``, ...) and compute nothing but ages; ``now_ms`` is passed in so the
views are stable in tests. Every view has a ``--json`` twin: the payload as received.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

Row = dict[str, Any]


def short_id(value: str, width: int = 12) -> str:
    """Long hex ids (device-derived node ids) shortened for tables; any unique prefix works
    where a command takes an id."""
    return value if len(value) <= width + 2 else value[:width] + "…"


def age(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "-"
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return f"{seconds}s ago"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m ago"
    hours = minutes // 60
    return f"{hours}h ago" if hours < 48 else f"{hours // 24}d ago"


ID_COLUMNS = {"Request": 8, "ID": 13}
REQUEST_PREFIX = 8  # request ids are shown (and may be given) as a unique prefix


def _table(*columns: str) -> Table:
    """Ids are never wrapped or cut (people copy them); other columns fold to fit."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        width = ID_COLUMNS.get(column)
        if width is not None:
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold")
    return table


def _state(row: Row) -> Text:
    connected = Text("connected", style="green") if row.get("connected") else Text("offline")
    paired = (
        Text("paired")
        if row.get("paired")
        else Text("pending" if row.get("pendingRequestId") else "unpaired", style="yellow")
    )
    return Text.assemble(connected, ", ", paired)


@attrs.frozen
class NodeList:
    nodes: list[Row]
    now_ms: int

    def __rich__(self) -> RenderableType:
        if not self.nodes:
            return Text("No nodes. A node appears here once it connects or is paired.")
        table = _table("Node", "ID", "Platform", "State", "Commands", "Seen")
        for row in self.nodes:
            platform = " / ".join(p for p in (row.get("platform"), row.get("deviceFamily")) if p)
            commands = row.get("commands") or []
            held = len(row.get("declaredCommands") or []) - len(commands)
            listed = ", ".join(commands) or "-"
            if held > 0:
                listed += f" (+{held} withheld)"
            seen = "now" if row.get("connected") else age(row.get("lastSeenAtMs"), self.now_ms)
            table.add_row(
                row.get("displayName") or "-",
                short_id(row["nodeId"]),
                platform or "-",
                _state(row),
                listed,
                seen,
            )
        return table


@attrs.frozen
class NodeDetail:
    node: Row
    now_ms: int

    def __rich__(self) -> RenderableType:
        n = self.node
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        grid.add_row("Node", n.get("displayName") or "-")
        grid.add_row("ID", n["nodeId"])
        grid.add_row("State", _state(n))
        if n.get("pendingRequestId"):
            grid.add_row("Pending request", n["pendingRequestId"])
        for label, key in (
            ("Platform", "platform"),
            ("Device family", "deviceFamily"),
            ("Model", "modelIdentifier"),
            ("Version", "version"),
            ("Address", "remoteIp"),
        ):
            if n.get(key):
                grid.add_row(label, str(n[key]))
        grid.add_row("Caps", ", ".join(n.get("caps") or []) or "-")
        grid.add_row("Commands", ", ".join(n.get("commands") or []) or "-")
        declared = n.get("declaredCommands")
        if declared:
            withheld = [c for c in declared if c not in (n.get("commands") or [])]
            grid.add_row("Withheld", ", ".join(withheld) or "-")
        permissions = n.get("permissions") or {}
        if permissions:
            grid.add_row(
                "Permissions",
                ", ".join(f"{k}={'on' if v else 'off'}" for k, v in permissions.items()),
            )
        if n.get("connectedAtMs"):
            grid.add_row("Connected", age(n["connectedAtMs"], self.now_ms))
        if n.get("approvedAtMs"):
            grid.add_row("Approved", age(n["approvedAtMs"], self.now_ms))
        if not n.get("connected") and n.get("lastSeenAtMs"):
            grid.add_row("Last seen", age(n["lastSeenAtMs"], self.now_ms))
        return grid


@attrs.frozen
class InvokeResult:
    result: Row

    def __rich__(self) -> RenderableType:
        r = self.result
        head = Text.assemble(
            ("ok ", "green"), f"{r.get('command')} on {short_id(str(r.get('nodeId')))}"
        )
        return Group(head, Text(json.dumps(r.get("payload"), indent=2, ensure_ascii=False)))


@attrs.frozen
class NodePending:
    pending: list[Row]
    now_ms: int

    def __rich__(self) -> RenderableType:
        if not self.pending:
            return Text("No pending node pairing requests.")
        table = _table("Request", "Node", "Platform", "Commands", "Asked")
        for row in self.pending:
            name = row.get("displayName") or short_id(row["nodeId"])
            if row.get("displayName"):
                name += f" ({short_id(row['nodeId'])})"
            if row.get("isRepair"):
                name += " [repair]"
            table.add_row(
                row["requestId"][:REQUEST_PREFIX],
                name,
                row.get("platform") or "-",
                ", ".join(row.get("commands") or []) or "-",
                age(row.get("ts"), self.now_ms),
            )
        return Group(
            table,
            Text("Approve with: smart-agent-neo nodes approve <request>", style="dim"),
        )


@attrs.frozen
class Done:
    """One line for a finished action (approve, reject, remove, rename, rotate, revoke)."""

    text: str

    def __rich__(self) -> RenderableType:
        return Text.assemble(("ok ", "green"), self.text)


def _who(row: Row) -> str:
    name = row.get("displayName") or row.get("clientId")
    return f"{name} ({short_id(row['deviceId'])})" if name else short_id(row["deviceId"])


@attrs.frozen
class DeviceList:
    pending: list[Row]
    paired: list[Row]
    now_ms: int

    def __rich__(self) -> RenderableType:
        parts: list[RenderableType] = [Text("Pending", style="bold")]
        if self.pending:
            table = _table("Request", "Device", "Wants", "Reason", "From", "Asked")
            for row in self.pending:
                scopes = ", ".join(row.get("scopes") or [])
                table.add_row(
                    row["requestId"][:REQUEST_PREFIX],
                    _who(row),
                    f"{row.get('role') or '-'}" + (f": {scopes}" if scopes else ""),
                    row.get("reason") or "-",
                    row.get("remoteIp") or "-",
                    age(row.get("ts"), self.now_ms),
                )
            parts.append(table)
            parts.append(
                Text("Approve with: smart-agent-neo devices approve <request>", style="dim")
            )
        else:
            parts.append(Text("  none"))
        parts.append(Text("Paired", style="bold"))
        if self.paired:
            table = _table("Device", "Roles", "Scopes", "Tokens", "State", "Approved")
            for row in self.paired:
                tokens = ", ".join(
                    t["role"] + (" (revoked)" if t.get("revokedAtMs") else "")
                    for t in row.get("tokens") or []
                )
                state = (
                    Text("connected", style="green") if row.get("connected") else Text("offline")
                )
                table.add_row(
                    _who(row),
                    ", ".join(row.get("roles") or []),
                    ", ".join(row.get("scopes") or []) or "-",
                    tokens or "-",
                    state,
                    age(row.get("approvedAtMs"), self.now_ms),
                )
            parts.append(table)
        else:
            parts.append(Text("  none"))
        return Group(*parts)
