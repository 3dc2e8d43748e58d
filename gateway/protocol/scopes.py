"""Operator scopes and what satisfies what (PROTOCOL.md 6.2); pure."""

from __future__ import annotations

ADMIN = "operator.admin"
READ = "operator.read"
WRITE = "operator.write"
APPROVALS = "operator.approvals"
PAIRING = "operator.pairing"


def scope_allows(granted: list[str], required: str) -> bool:
    """Admin satisfies everything; write satisfies read; otherwise the exact scope."""
    if ADMIN in granted or required in granted:
        return True
    return required == READ and WRITE in granted
