"""Run the gateway with other garbage-collector thresholds: an experiment, not a setting.

    python -m bench.gcwrap 50000,50,1000 gateway --port 0 ...

``python -m bench --gateway-gc 50000,50,1000`` starts every gateway this way, so a GC policy
can be measured before anyone puts it in the gateway itself (BENCHMARKS.md, "GC pauses").
"""

from __future__ import annotations

import gc
import runpy
import sys


def main() -> None:
    thresholds = [int(t) for t in sys.argv[1].split(",")]
    gc.set_threshold(*thresholds)
    sys.argv = ["gateway", *sys.argv[2:]]
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
