"""Write ``schemas/protocol.schema.json`` and ``clients/typescript/protocol.d.ts``.

    python -m gateway.schema_emit [ROOT]

Both come from the attrs types, the method registry and the event table; ``nox -s schemas``
runs this and fails if the checked-in files changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .protocol.events import EVENTS
from .protocol.frames import CancelFrame, ErrorShape, EventFrame, RequestFrame, ResponseFrame
from .protocol.handshake import ConnectParams, HelloOk
from .protocol.schema import build_bundle, emit_typescript
from .rpc.registry import methods

FRAMES = (RequestFrame, ResponseFrame, EventFrame, CancelFrame, ErrorShape, ConnectParams, HelloOk)


def bundle() -> dict[str, object]:
    return build_bundle(FRAMES, [m.entry() for m in methods().values()], EVENTS.values())


def render() -> tuple[str, str]:
    data = bundle()
    return json.dumps(data, indent=2) + "\n", emit_typescript(data)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent
    schema_text, ts_text = render()
    (root / "schemas" / "protocol.schema.json").write_text(schema_text)
    (root / "clients" / "typescript" / "protocol.d.ts").write_text(ts_text)
    print(f"wrote {root / 'schemas'} and {root / 'clients' / 'typescript'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
