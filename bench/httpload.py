"""The HTTP keep-alive load job on ``wrk``: ``python -m bench.httpload '<job json>'``.

A probe costs the gateway ~25 µs; a Python client costs more than that per request, so
with one it measured the client (BENCHMARKS.md: 0.89x "the reference" was both servers
waiting for the same Python process). ``wrk`` (C, epoll; Debian's ``wrk`` package) sends
the same keep-alive ``GET`` back to back from one thread on ``conns`` connections, one
request in flight each -- the same shape as ``bench/load.py``'s HTTP job -- at a few µs per
request. The job speaks the load generator's JSON-lines protocol (``ready``, ``go``,
``result``), so ``scenarios/throughput.drive`` runs it like any other load process; the
result carries wrk's own percentiles instead of samples. Without ``wrk`` on ``PATH`` the
bench falls back to the Python client and says so in the row's note.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

# wrk calls done() once at the end; latency values are microseconds
REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d," ..
    "\\"max_us\\":%d,\\"errors\\":%d,\\"non2xx\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""
REPORT_RE = re.compile(r"^BENCH (\{.*\})$", re.MULTILINE)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, conns: int, seconds: float, script: str) -> dict[str, Any]:
    """One wrk run (one thread, ``conns`` keep-alive connections); its ``done()`` report."""
    wrk = wrk_path()
    assert wrk is not None
    argv = [wrk, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", script, url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = REPORT_RE.search(out.stdout)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {(out.stderr or out.stdout)[-300:]}")
    report: dict[str, Any] = json.loads(found.group(1))
    return report


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def main(job: dict[str, Any]) -> None:
    url = f"http://{job['host']}:{job['port']}{job.get('path', '/healthz')}"
    conns = int(job["conns"])
    emit("ready", connected=conns, errors=[])
    if sys.stdin.readline().strip() != "go":
        return
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = os.path.join(tmp, "report.lua")
        with open(script, "w") as f:
            f.write(REPORT)
        warm = run_wrk(url, conns, float(job["warmup"]), script)
        measured = run_wrk(url, conns, float(job["duration"]), script)
    errors = measured["errors"] + measured["non2xx"]
    emit(
        "result",
        total=warm["requests"] + measured["requests"],
        count=measured["requests"],
        elapsed=measured["duration_us"] / 1e6,
        latencies_us=[],
        percentiles_us={k: measured[k] for k in ("p50_us", "p99_us", "max_us")},
        errors=errors,
        error_samples=[f"{errors} socket errors or non-2xx answers (wrk)"] if errors else [],
        client="wrk",
    )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
