"""What a run produced: measurements, the machine, the targets; rendered as Rich and JSON.

A :class:`Report` renders itself (``__rich__``) and has a JSON twin (``to_json``) and a
Markdown twin (``to_markdown``, pasted into BENCHMARKS.md), all from the same data.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Literal

import attrs
from rich.console import Group, RenderableType
from rich.table import Table

Status = Literal["ok", "unsupported", "error"]


@attrs.define
class Measurement:
    scenario: str
    case: str
    value: float | None
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    ceiling: float | None = None
    status: Status = "ok"
    note: str = ""
    detail: dict[str, Any] = attrs.field(factory=dict)
    lower_is_better: bool = False  # latencies: the share is ceiling / ours

    @property
    def share(self) -> float | None:
        """How close to the ceiling: 100% is as good as the bare stack."""
        if not self.value or not self.ceiling:
            return None
        return self.ceiling / self.value if self.lower_is_better else self.value / self.ceiling


@attrs.define
class Verdict:
    target: str
    observed: str
    met: bool | None  # None: not measured in this run


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), cpu)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _loadavg(m: dict[str, Any]) -> str:
    before, after = m.get("loadavg_before"), m.get("loadavg_after")
    if not before or not after:
        return ""
    return f"load average {before[0]:.2f} before, {after[0]:.2f} after"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _value(m: Measurement) -> str:
    if m.status != "ok":
        return m.status
    digits = 0 if m.unit in ("req/s", "hs/s") else 1 if m.unit in ("MB", "ms") else 2
    return f"{_num(m.value, digits)} {m.unit}"


def _ceiling(m: Measurement) -> str:
    if not m.ceiling:
        return "-"
    return _num(m.ceiling, 1 if m.unit == "ms" else 0)


def _share(m: Measurement) -> str:
    share = m.share
    return "-" if share is None else f"{share:.0%}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


@attrs.define
class Report:
    started: str
    command: str
    machine: dict[str, Any]
    measurements: list[Measurement]
    verdicts: list[Verdict]
    seconds: float = 0.0
    gateway_gc: str | None = None  # the --gateway-gc experiment, if any

    def results_table(self) -> Table:
        table = Table(title="smart-agent-neo gateway benchmarks", title_justify="left")
        for name, justify in [
            ("Scenario", "left"),
            ("Case", "left"),
            ("Result", "right"),
            ("p50 ms", "right"),
            ("p99 ms", "right"),
            ("Ceiling", "right"),
            ("Share", "right"),
            ("Note", "left"),
        ]:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for m in self.measurements:
            table.add_row(
                m.scenario,
                m.case,
                _value(m),
                _num(m.p50_ms, 2),
                _num(m.p99_ms, 2),
                _ceiling(m),
                _share(m),
                m.note,
            )
        return table

    def targets_table(self) -> Table:
        table = Table(title="Targets (issues 11 and 7, 2-core machine)", title_justify="left")
        table.add_column("Target")
        table.add_column("Observed")
        table.add_column("Verdict")
        for v in self.verdicts:
            style = {True: "green", False: "red", None: "yellow"}[v.met]
            table.add_row(v.target, v.observed, f"[{style}]{_met(v.met)}[/]")
        return table

    def __rich__(self) -> RenderableType:
        m = self.machine
        head = (
            f"{m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['cpu']}"
            f" -- {self.seconds:.0f} s; {_loadavg(m)}"
        )
        if self.gateway_gc:
            head += f"\nEXPERIMENT: gateway run with gc.set_threshold({self.gateway_gc})"
        return Group(head, self.results_table(), self.targets_table())

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "command": self.command,
            "seconds": round(self.seconds, 1),
            "gateway_gc": self.gateway_gc,
            "machine": self.machine,
            "measurements": [{**attrs.asdict(m), "share": m.share} for m in self.measurements],
            "targets": [attrs.asdict(v) for v in self.verdicts],
        }

    def to_markdown(self) -> str:
        m = self.machine
        lines = [
            f"Run {self.started}: `{self.command}` ({self.seconds:.0f} s) on "
            f"{m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']} ({m['cpu']}); "
            f"{_loadavg(m)}."
            + (f" EXPERIMENT: gc.set_threshold({self.gateway_gc})." if self.gateway_gc else ""),
            "",
            "| Scenario | Case | Result | p50 ms | p99 ms | Ceiling | Share | Note |",
            "|---|---|--:|--:|--:|--:|--:|---|",
        ]
        for r in self.measurements:
            ceiling = _ceiling(r)
            lines.append(
                f"| {r.scenario} | {r.case} | {_value(r)} | {_num(r.p50_ms, 2)} | "
                f"{_num(r.p99_ms, 2)} | {ceiling} | {_share(r)} | {r.note} |"
            )
        lines += ["", "| Target | Observed | Verdict |", "|---|---|---|"]
        for v in self.verdicts:
            lines.append(f"| {v.target} | {v.observed} | {_met(v.met)} |")
        return "\n".join(lines) + "\n"
