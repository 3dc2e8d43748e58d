"""What device pairing and node pairing have in common: requests that wait for a person,
the records they approve, and the two files that hold them.

:class:`PairingStore` is the pure part -- pending requests keyed by requestId that expire
``ttl_ms`` after their last retry, paired records keyed by their subject (a deviceId or a
nodeId) -- and :class:`PairingService` the part that writes them and announces what expired.
Each side adds its own state machine (:mod:`gateway.devices.pairing`,
:mod:`gateway.nodes.pairing`) and its own events.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import attrs
from attrs import AttrsInstance

from .protocol.codec import to_wire
from .statefile import StateFile

PENDING_TTL_MS = 300_000


class Request(Protocol):
    @property
    def request_id(self) -> str: ...
    @property
    def ts(self) -> int: ...


class Record(Protocol):
    @property
    def approved_at_ms(self) -> int: ...


R = TypeVar("R", bound=Request)
P = TypeVar("P", bound=Record)
V = TypeVar("V", bound=AttrsInstance)


def view_of(view: type[V], record: object, **given: object) -> V:
    """``view`` (what lists show of a stored record, without its secrets) filled from
    ``record``'s attributes of the same names; ``given`` supplies the ones it lacks."""
    fields = {a.name: getattr(record, a.name) for a in attrs.fields(view) if a.name not in given}
    return view(**fields, **given)


@attrs.define
class PairingStore(Generic[R, P]):
    pending: dict[str, R] = attrs.field(factory=dict)  # by requestId
    paired: dict[str, P] = attrs.field(factory=dict)  # by subject id
    ttl_ms: int = PENDING_TTL_MS

    def subject_of(self, item: R | P) -> str:
        """The id a request or record is about (``device_id``, ``node_id``)."""
        raise NotImplementedError

    def prune(self, now_ms: int) -> list[R]:
        """Drop requests older than the TTL; returns them (for ``expired`` events)."""
        expired = [r for r in self.pending.values() if now_ms - r.ts > self.ttl_ms]
        for request in expired:
            del self.pending[request.request_id]
        return expired

    def pending_for(self, subject_id: str) -> R | None:
        return next((r for r in self.pending.values() if self.subject_of(r) == subject_id), None)

    def reject(self, request_id: str) -> R | None:
        return self.pending.pop(request_id, None)

    def remove(self, subject_id: str) -> P | None:
        """Unpair, dropping the subject's pending requests too."""
        for request in [r for r in self.pending.values() if self.subject_of(r) == subject_id]:
            del self.pending[request.request_id]
        return self.paired.pop(subject_id, None)

    def listing(self, now_ms: int) -> tuple[list[R], list[P]]:
        """Pending newest first, paired newest approval first."""
        self.prune(now_ms)
        pending = sorted(self.pending.values(), key=lambda r: r.ts, reverse=True)
        paired = sorted(self.paired.values(), key=lambda p: p.approved_at_ms, reverse=True)
        return pending, paired


@attrs.define(eq=False)
class PairingFiles:
    """``<folder>/pending.json`` (requests by requestId) and ``paired.json`` (records by
    subject id): 0600, written atomically and in order (:class:`~gateway.statefile.StateFile`)."""

    folder: Path
    pending: StateFile = attrs.field(init=False)
    paired: StateFile = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.pending = StateFile(self.folder / "pending.json")
        self.paired = StateFile(self.folder / "paired.json")

    def load(self, store: PairingStore[R, P], request_type: type[R], record_type: type[P]) -> None:
        """Fill ``store`` with what the files hold (a record that no longer parses is skipped)."""
        store.pending = self.pending.load_records(request_type, lambda r: r.request_id)
        store.paired = self.paired.load_records(record_type, store.subject_of)

    async def save(self, store: PairingStore[R, P]) -> None:
        # paired first: a crash between the two writes can leave an approved request still
        # pending (approving it again is harmless), never a request lost and nothing paired
        await self.paired.save({k: to_wire(v) for k, v in store.paired.items()})
        await self.pending.save({k: to_wire(v) for k, v in store.pending.items()})


class PairingService(Generic[R, P]):
    """The disk and expiry half of a pairing service (devices, nodes).

    Subclasses are attrs classes that set ``pairing``, ``now_ms`` and ``_files`` and say in
    :meth:`resolved` how a decision is logged and announced."""

    pairing: PairingStore[R, P]
    now_ms: Callable[[], int]
    _files: PairingFiles

    def resolved(self, request_id: str, subject_id: str, decision: str) -> None:
        raise NotImplementedError

    async def save(self) -> None:
        await self._files.save(self.pairing)

    def prune(self) -> bool:
        """Expire old requests (``expired`` events); ``True`` if anything changed."""
        expired = self.pairing.prune(self.now_ms())
        for request in expired:
            self.resolved(request.request_id, self.pairing.subject_of(request), "expired")
        return bool(expired)

    async def sweep(self) -> None:
        """Expire what is due (serve()'s sweep loop): written first, then announced."""
        expired = self.pairing.prune(self.now_ms())
        if expired:
            await self.save()
        for request in expired:
            self.resolved(request.request_id, self.pairing.subject_of(request), "expired")
