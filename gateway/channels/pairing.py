"""DM pairing: codes for unknown senders, approval into the allow store (CHANNELS.md 3.5).

Files under ``$STATE/credentials/`` (0600, atomic writes, one flock for all of them):

* ``<channel>-pairing.json``  -- pending requests ``{id, code, createdAt, lastSeenAt,
  meta:{username, name, accountId}}``;
* ``<channel>-<accountId>-allowFrom.json`` -- approved sender ids (the default account also
  reads the legacy ``<channel>-allowFrom.json``).

A code is 8 characters from an alphabet without look-alikes, unique among pending
requests; a request lives 1 h; at most 3 are pending per channel account (senders beyond
that are ignored until a slot frees). The bot answers a stranger only when a request is
*created*, so a sender sees at most one code an hour. The gateway and the CLI (when the
gateway is down) both go through :class:`PairingStore`.

:func:`touch` and :func:`approve_in` are the pure decisions; the clock and the random source
are passed in, so expiry is tested with a fake clock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..config.edit import add_value, read_document, set_values
from ..fsutil import write_atomic

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
TTL_MS = 3_600_000
MAX_PENDING = 3
CREDENTIALS = "credentials"


@attrs.frozen
class Request:
    id: str  # the sender id
    code: str
    created_at: int
    last_seen_at: int
    account_id: str
    username: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "createdAt": self.created_at,
            "lastSeenAt": self.last_seen_at,
            "meta": {"username": self.username, "name": self.name, "accountId": self.account_id},
        }

    @classmethod
    def from_json(cls, data: Any) -> Request | None:
        try:
            meta = data.get("meta") or {}
            return cls(
                id=str(data["id"]),
                code=str(data["code"]),
                created_at=int(data["createdAt"]),
                last_seen_at=int(data.get("lastSeenAt", data["createdAt"])),
                account_id=str(meta.get("accountId") or "default"),
                username=meta.get("username"),
                name=meta.get("name"),
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def new_code(taken: set[str], choice: Callable[[str], str] = secrets.choice) -> str:
    while True:
        code = "".join(choice(ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken:
            return code


def live(requests: list[Request], now_ms: int) -> list[Request]:
    return [r for r in requests if now_ms - r.created_at < TTL_MS]


def touch(
    requests: list[Request],
    sender_id: str,
    account_id: str,
    now_ms: int,
    *,
    username: str | None = None,
    name: str | None = None,
    choice: Callable[[str], str] = secrets.choice,
) -> tuple[list[Request], Request | None, bool]:
    """A DM from an unknown sender: ``(requests, request or None, created)``.

    ``created`` is true only when a new request was made (the one time the bot replies);
    ``None`` means all slots are taken and the sender is ignored.
    """
    current = live(requests, now_ms)
    for i, req in enumerate(current):
        if req.id == sender_id and req.account_id == account_id:
            current[i] = attrs.evolve(req, last_seen_at=now_ms)
            return current, current[i], False
    if sum(1 for r in current if r.account_id == account_id) >= MAX_PENDING:
        return current, None, False
    req = Request(
        id=sender_id,
        code=new_code({r.code for r in current}, choice),
        created_at=now_ms,
        last_seen_at=now_ms,
        account_id=account_id,
        username=username,
        name=name,
    )
    return [*current, req], req, True


def approve_in(
    requests: list[Request], code: str, account_id: str | None, now_ms: int
) -> tuple[list[Request], Request | None]:
    wanted = code.strip().upper()
    current = live(requests, now_ms)
    for req in current:
        if req.code == wanted and (account_id is None or req.account_id == account_id):
            return [r for r in current if r is not req], req
    return current, None


def reply_text(channel: str, sender_id: str, code: str) -> str:
    return (
        "This assistant only talks to people its owner has approved.\n\n"
        f"Your {channel} user id: {sender_id}\n"
        f"Pairing code: {code}\n\n"
        "Ask the owner to run:\n"
        f"smart-agent-neo pairing approve {channel} {code}"
    )


class PairingStore:
    """The pairing files of one channel in one state dir. Blocking: call from a thread."""

    def __init__(self, state_dir: Path, channel: str) -> None:
        self.dir = state_dir / CREDENTIALS
        self.channel = channel

    @property
    def requests_path(self) -> Path:
        return self.dir / f"{self.channel}-pairing.json"

    def allow_path(self, account_id: str) -> Path:
        return self.dir / f"{self.channel}-{account_id}-allowFrom.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.dir / f".{self.channel}-pairing.lock"
        with open(lock, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _requests(self) -> list[Request]:
        data = self._read_json(self.requests_path)
        items = data.get("requests") if isinstance(data, dict) else None
        out = [Request.from_json(item) for item in items if isinstance(item, dict)] if items else []
        return [r for r in out if r is not None]

    def _write_requests(self, requests: list[Request]) -> None:
        body = {"version": 1, "requests": [r.to_json() for r in requests]}
        write_atomic(self.requests_path, json.dumps(body, indent=2) + "\n", secret=True)

    def pending(self, now_ms: int, account_id: str | None = None) -> list[Request]:
        if not self.requests_path.exists():
            return []  # a read never creates the credentials dir
        with self.locked():
            found = live(self._requests(), now_ms)
        return [r for r in found if account_id is None or r.account_id == account_id]

    def approved(self, account_id: str, default_account: bool) -> set[str]:
        paths = [self.allow_path(account_id)]
        if default_account:
            paths.append(self.dir / f"{self.channel}-allowFrom.json")
        found: set[str] = set()
        for path in paths:
            data = self._read_json(path)
            items = data.get("allowFrom") if isinstance(data, dict) else None
            if isinstance(items, list):
                found.update(str(i) for i in items)
        return found

    def request(
        self,
        sender_id: str,
        account_id: str,
        now_ms: int,
        *,
        username: str | None = None,
        name: str | None = None,
    ) -> tuple[Request | None, bool]:
        with self.locked():
            requests, req, created = touch(
                self._requests(), sender_id, account_id, now_ms, username=username, name=name
            )
            self._write_requests(requests)
        return req, created

    def approve(self, code: str, account_id: str | None, now_ms: int) -> Request | None:
        with self.locked():
            requests, req = approve_in(self._requests(), code, account_id, now_ms)
            if req is None:
                return None
            path = self.allow_path(req.account_id)
            data = self._read_json(path)
            items = data.get("allowFrom") if isinstance(data, dict) else None
            allow = [str(i) for i in items] if isinstance(items, list) else []
            if req.id not in allow:
                allow.append(req.id)
            write_atomic(
                path,
                json.dumps({"version": 1, "allowFrom": allow}, indent=2) + "\n",
                secret=True,
            )
            self._write_requests(requests)
        return req


def bootstrap_owner(
    config_path: Path, channel: str, sender_id: str, env: Mapping[str, str]
) -> str | None:
    """The first approval makes its sender the owner: an unset (or empty)
    ``commands.ownerAllowFrom`` becomes ``["<channel>:<id>"]`` (CHANNELS.md 3.5 [ref]).

    Returns the entry written; ``None`` when an owner is already configured or there is no
    config file (a gateway on embedded defaults gets no file written behind its back).
    Blocking; raises ConfigError/OSError when the file cannot be updated (left untouched).
    """
    document, text = read_document(config_path)
    if text is None:
        return None
    commands = document.get("commands")
    owners = commands.get("ownerAllowFrom") if isinstance(commands, dict) else None
    if isinstance(owners, list) and any(str(o).strip() for o in owners):
        return None
    entry = f"{channel}:{sender_id}"
    if isinstance(commands, dict) and "ownerAllowFrom" in commands:
        set_values(config_path, {"commands.ownerAllowFrom": [entry]}, env)
    else:
        add_value(config_path, "commands.ownerAllowFrom", [entry], env)
    return entry
