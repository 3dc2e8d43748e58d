"""The narrow surface between the outbox and a channel's transport (CHANNELS.md 6.3).

A running account hands its worker a :class:`Sender`; the worker calls
:meth:`Sender.send_part` once per part and reads the platform's message id back, or a
:class:`SendError` whose ``failure`` says what kind of trouble it was (the error classes of
``outbox/policy.py``).
"""

from __future__ import annotations

from typing import Protocol

from ..errors import ChannelError
from .outbox.model import Part, Record
from .outbox.pacing import Limits
from .outbox.policy import SendFailure


class SendError(ChannelError):
    """One part could not be confirmed; ``kind`` is the outbox's error class."""

    def __init__(
        self,
        kind: str,
        message: str,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        self.kind = kind  # network | rate_limit | ambiguous | permanent | auth
        self.retry_after_s = retry_after_s
        self.status = status
        super().__init__(message)

    @property
    def failure(self) -> SendFailure:
        return SendFailure(self.kind, str(self), self.retry_after_s, self.status)  # type: ignore[arg-type]


class Sender(Protocol):
    """What a running account offers its outbox worker."""

    @property
    def limits(self) -> Limits: ...

    @property
    def ambiguous_grace_ms(self) -> int:
        """How long a part found ``sending`` after a crash waits for the platform to settle
        it (a WhatsApp status webhook); 0 where the platform never will."""
        ...

    def is_group(self, to: str) -> bool: ...

    async def send_part(self, record: Record, part: Part) -> str:
        """Send one part; the platform's message id, or :class:`SendError`."""
        ...
