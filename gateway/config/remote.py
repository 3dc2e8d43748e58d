"""``config.set`` / ``config.apply`` / ``config.patch`` decided (PROTOCOL.md 7.13,
FAILURE-MODES 10): pure apart from nothing -- the caller reads the file and writes the text.

The rules: the write names the revision it was made from (``baseHash`` = config.get's
``hash``); when the file exists and the hash is absent or stale the write is refused, so two
editors never overwrite each other unseen. ``set``/``apply`` replace the document,
``patch`` merges (RFC 7396: ``null`` deletes). A value that reads ``__REDACTED__`` (sent
back from config.get) keeps the secret the file holds at that key path. The result is
validated exactly as start-up validates; nothing is written unless it passes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Literal

import attrs
import json5

from ..errors import ConfigError, InvalidRequest
from .load import parse
from .model import Config
from .snapshot import REDACTED, is_secret_key

Kind = Literal["set", "apply", "patch"]


def text_hash(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


@attrs.frozen
class Planned:
    document: dict[str, object]
    text: str  # what to write
    config: Config


def merge_patch(target: object, patch: object) -> object:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result: dict[str, object] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def restore_redacted(new: object, old: object, method: str, path: str = "") -> object:
    """``new`` with every ``__REDACTED__`` secret replaced by the value ``old`` has there."""
    if isinstance(new, dict):
        old_map = old if isinstance(old, dict) else {}
        out: dict[str, object] = {}
        for key, value in new.items():
            where = f"{path}.{key}" if path else str(key)
            if value == REDACTED and is_secret_key(str(key)):
                kept = old_map.get(key)
                if not isinstance(kept, str):
                    raise InvalidRequest(
                        f"invalid {method} params: raw: {where}: {REDACTED} stands for the "
                        "secret the file holds there, and it holds none; send the value"
                    )
                out[key] = kept
            else:
                out[key] = restore_redacted(value, old_map.get(key), method, where)
        return out
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [
            restore_redacted(v, old_list[i] if i < len(old_list) else None, method, f"{path}.{i}")
            for i, v in enumerate(new)
        ]
    return new


def plan_write(
    kind: Kind,
    current: str | None,
    raw: str,
    base_hash: str | None,
    env: Mapping[str, str],
    source: str,
) -> Planned:
    """The document to write for this request, or ``InvalidRequest`` saying why not."""
    method = f"config.{kind}"
    if current is not None:
        if base_hash is None:
            raise InvalidRequest(
                f"invalid {method} params: baseHash is required when the config file exists "
                "(send config.get's hash)",
                details={"code": "CONFIG_BASE_HASH_REQUIRED"},
            )
        if base_hash != text_hash(current):
            raise InvalidRequest(
                "config changed since it was read (baseHash does not match); read it again "
                "with config.get and retry",
                details={"code": "CONFIG_BASE_HASH_MISMATCH"},
            )
    try:
        given = json5.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"invalid {method} params: raw: not JSON5: {exc}") from None
    if not isinstance(given, dict):
        raise InvalidRequest(f"invalid {method} params: raw: expected an object")
    try:
        old: object = json5.loads(current) if current is not None else {}
    except ValueError:
        old = {}  # a broken file: a patch starts from nothing, secrets cannot be kept
    merged = merge_patch(old, given) if kind == "patch" else given
    document = restore_redacted(merged, old, method)
    assert isinstance(document, dict)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        config, _ = parse(text, env, source=source)
    except ConfigError as exc:
        raise InvalidRequest(
            f"invalid config: {'; '.join(exc.problems)}",
            details={"code": "CONFIG_INVALID", "problems": exc.problems},
        ) from None
    return Planned(document, text, config)
