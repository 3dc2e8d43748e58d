"""Session keys: ``agent:<agentId>:<key>``, and the file each transcript lives in (pure).

Keys are case-insensitive (lower-cased on the way in). A key without the ``agent:`` prefix
belongs to the default agent: ``main`` is ``agent:<default>:main``. The part after the agent
id becomes the transcript's file name, percent-encoded so that any key maps to exactly one
file and back.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from ..errors import SessionKeyError

AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_AGENT_ID = "main"
MAIN_KEY = "main"  # the main session of an agent: agent:<id>:main
MAX_KEY_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_agent_id(raw: str) -> str:
    agent_id = raw.strip().lower()
    if not AGENT_ID.match(agent_id):
        raise SessionKeyError(
            f'invalid agent id "{raw}": use 1-64 of a-z, 0-9, "_" and "-", starting with a '
            "letter or digit"
        )
    return agent_id


def parse_session_key(raw: str, default_agent: str) -> tuple[str, str]:
    """``(agent_id, rest)`` of a session key; raises :class:`SessionKeyError` with the reason."""
    key = raw.strip().lower()
    if not key:
        raise SessionKeyError("session key must not be empty")
    if len(key) > MAX_KEY_CHARS:
        raise SessionKeyError(f"session key is longer than {MAX_KEY_CHARS} characters")
    if _CONTROL.search(key):
        raise SessionKeyError("session key must not contain control characters")
    if key.startswith("agent:"):
        agent_part, sep, rest = key[len("agent:") :].partition(":")
        if not sep or not rest:
            raise SessionKeyError(f'session key "{raw}" must look like agent:<agentId>:<key>')
        return normalize_agent_id(agent_part), rest
    return default_agent, key


def session_key(agent_id: str, rest: str) -> str:
    return f"agent:{agent_id}:{rest}"


def file_stem(rest: str) -> str:
    """The transcript file name (without ``.jsonl``) for the part after the agent id."""
    stem = quote(rest, safe="-_.")
    # "." and ".." are valid keys but not file names
    return stem.replace(".", "%2E") if set(stem) == {"."} else stem


def rest_from_stem(stem: str) -> str:
    return unquote(stem)
