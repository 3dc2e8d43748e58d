"""The durable outbox (CHANNELS.md 6): records, parts, the per-account worker, the policies."""

from .model import Media, Mirror, NewRecord, Part, PartSpec, Payload, Record, Target
from .service import Outbox, OutboxSettings
from .store import OutboxFull

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
