"""``python -m bench [--quick] [--only NAME ...]``: run the scenarios, print, save.

Prints a Rich table (or, with ``--json``, only the JSON), writes
``bench-results/<timestamp>.json`` and, with ``--markdown FILE``, the same results as a
Markdown fragment for BENCHMARKS.md. A scenario that fails becomes an ``error`` row with the
reason; the run goes on with the next one. Exit code 0 unless the harness itself broke --
missed targets are findings, not failures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import attrs
import trio
from rich.console import Console

from . import procs
from .plan import FULL, QUICK, TINY, Plan
from .report import Measurement, Report, machine
from .scenarios import channels, connections, hostile, lifecycle, outbox, reference, throughput
from .targets import evaluate

Scenario = Callable[[Plan, Path], Awaitable[list[Measurement]]]

SCENARIOS: dict[str, Scenario] = {
    "rpc": throughput.rpc,
    "handshake": throughput.handshakes,
    "http": throughput.http,
    "fanout": connections.fanout,
    "memory": connections.memory,
    "cold-start": lifecycle.cold_start,
    "reload": lifecycle.reload,
    "restart": lifecycle.restart,
    "sigterm": connections.sigterm,
    "channels": channels.run,
    "outbox": outbox.run,
    "preauth-memory": hostile.preauth_memory,
    "idle-flood": hostile.idle_flood,
    "big-bodies": hostile.big_bodies,
    "soak": hostile.soak,
}
OPT_IN = frozenset({"soak"})  # 30 minutes: run it with --only soak
SCENARIO_TIMEOUT = 300.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1 s per load case (~2 minutes)")
    size.add_argument("--tiny", action="store_true", help="a few connections; for the smoke test")
    parser.add_argument(
        "--only",
        action="append",
        choices=[*sorted(SCENARIOS), "reference"],
        help="run only these (repeatable; 'reference' needs --reference)",
    )
    parser.add_argument("--duration", type=float, help="seconds per load case")
    parser.add_argument(
        "--load-procs", type=int, help="load-generator processes for rpc/handshakes (default 1)"
    )
    parser.add_argument(
        "--gateway-gc",
        metavar="T0,T1,T2",
        help="experiment: run the gateway with gc.set_threshold(T0, T1, T2)",
    )
    parser.add_argument(
        "--reference",
        metavar="CMD",
        help="also measure the reference gateway started by CMD ({port} and {token} are "
        "filled in); the targets then compare against it on this machine",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results dir")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    parser.add_argument("--json", action="store_true", help="print only the JSON results")
    return parser.parse_args(argv)


def plan_for(args: argparse.Namespace) -> Plan:
    plan = TINY if args.tiny else QUICK if args.quick else FULL
    if args.duration is not None:
        plan = attrs.evolve(plan, duration=args.duration)
    if args.load_procs is not None:
        plan = attrs.evolve(plan, load_procs=args.load_procs)
    if args.reference:
        plan = attrs.evolve(plan, reference=args.reference)
    return plan


def raise_fd_limit() -> None:
    """Children inherit it: 1,000 clients need more than the common default of 1,024 fds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def run(
    names: list[str], plan: Plan, log: Console, scenarios: dict[str, Scenario] = SCENARIOS
) -> list[Measurement]:
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            started = time.monotonic()
            log.log(f"[bold]{name}[/] ...")
            try:
                with trio.fail_after(
                    SCENARIO_TIMEOUT + (plan.soak_seconds if name == "soak" else 0)
                ):
                    found = await scenarios[name](plan, Path(tmp))
            except Exception as exc:
                log.print("".join(traceback.format_exception(exc)[-12:]), markup=False)
                reason = procs.describe(exc)
                found = [
                    Measurement(name, "scenario failed", None, "", status="error", note=reason)
                ]
            for m in found:
                log.log(f"  {m.case}: {m.value if m.value is None else round(m.value, 2)} {m.unit}")
            log.log(f"  ({time.monotonic() - started:.0f} s)")
            rows += found
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_for(args)
    names = [n for n in SCENARIOS if (n in args.only if args.only else n not in OPT_IN)]
    scenarios = dict(SCENARIOS)
    if args.only and "reference" in args.only and not args.reference:
        raise SystemExit("--only reference: say how to start it with --reference CMD")
    if args.reference and (not args.only or "reference" in args.only):
        scenarios["reference"] = partial(reference.run, template=args.reference)
        names.append("reference")
    out = Console() if sys.stdout.isatty() else Console(width=160)
    log = Console(stderr=True, quiet=args.json)
    raise_fd_limit()
    if args.gateway_gc:
        os.environ[procs.GC_ENV] = args.gateway_gc
    started = datetime.now(UTC)
    t0 = time.monotonic()
    # other work on the machine shows up here before it shows up as a slow result
    load_before = os.getloadavg()
    rows = trio.run(run, names, plan, log, scenarios)
    report = Report(
        started=started.strftime("%Y-%m-%d %H:%M UTC"),
        command="python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        machine={**machine(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        gateway_gc=args.gateway_gc,
        measurements=rows,
        verdicts=evaluate(rows),
        seconds=time.monotonic() - t0,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(report.to_markdown())
    if args.json:
        out.print_json(data=report.to_json())
    else:
        out.print(report)
        out.print(f"Results: {path}")
    return 0
