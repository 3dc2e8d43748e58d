"""The durable outbox (CHANNELS.md 6): records, parts, the per-account worker, the policies.

The record types load with the package; the store and the worker (``sqlite3`` with them)
only when first used -- an RPC module that names a record type does not open a database
layer in a gateway without channels (BENCHMARKS.md, memory).
"""

from typing import TYPE_CHECKING, Any

from .model import Media, Mirror, NewRecord, Part, PartSpec, Payload, Record, Target

if TYPE_CHECKING:
    from .service import Outbox, OutboxSettings
    from .store import OutboxFull


def __getattr__(name: str) -> Any:
    if name in ("Outbox", "OutboxSettings"):
        from . import service

        return getattr(service, name)
    if name == "OutboxFull":
        from .store import OutboxFull

        return OutboxFull
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Media",
    "Mirror",
    "NewRecord",
    "Outbox",
    "OutboxFull",
    "OutboxSettings",
    "Part",
    "PartSpec",
    "Payload",
    "Record",
    "Target",
]
