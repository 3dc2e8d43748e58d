"""``--timeout`` values: a number in the flag's own unit, or a duration with its unit.

``agent --timeout`` counts seconds (the runbook's ``--timeout <s>``) and the RPC commands'
``--timeout`` milliseconds (``logs --timeout 30000``): both also take ``500ms``, ``30s``,
``2m`` or ``1h``, so nobody has to remember which is which, and each flag's help names its
bare unit.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Literal

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?")
_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}

Unit = Literal["ms", "s"]


def duration(unit: Unit) -> Callable[[str], int]:
    """An argparse ``type``: the value in ``unit`` (a fraction of a second rounds up)."""

    def parse(text: str) -> int:
        match = _DURATION.fullmatch(text.strip())
        if match is None:
            bare = "milliseconds" if unit == "ms" else "seconds"
            raise argparse.ArgumentTypeError(
                f"expected a number of {bare} or a duration like 500ms, 30s, 2m, got {text!r}"
            )
        ms = float(match.group(1)) * _MS[match.group(2) or unit]
        return math.ceil(ms / _MS[unit])

    parse.__name__ = "duration"  # argparse names the type in its messages
    return parse
