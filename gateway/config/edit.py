"""Edit the config file by key path -- validated exactly as start-up validates, written
atomically, never leaving the user's file broken. Pure except :func:`set_value`'s final write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import json5

from ..errors import ConfigError, GatewayError
from ..fsutil import write_atomic
from ..protocol.model import camel
from .load import SECRET_KEYS, load_file, parse
from .model import Config

_COMMENT = re.compile(r"(^|\s)(//|/\*)")


def parse_value(text: str) -> object:
    """``19000`` -> 19000, ``true`` -> True, ``"x"``/``x`` -> "x", ``{a: 1}`` -> dict."""
    try:
        return json5.loads(text)
    except ValueError:
        return text


def get_path(data: object, key: str) -> object:
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise GatewayError(f"{key}: not set (no such key, or no value and no default)")
        node = node[part]
    return node


def with_value(document: dict[str, object], key: str, value: object) -> dict[str, object]:
    """A copy of ``document`` with ``key`` (dotted) set to ``value``."""
    parts = key.split(".")
    if not all(parts):
        raise GatewayError(f'invalid key path "{key}"')
    result: dict[str, object] = json.loads(json.dumps(document))
    node = result
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise GatewayError(f"{'.'.join(parts[: i + 1])}: is not an object, cannot set {key}")
        node = child
    node[parts[-1]] = value
    return result


def without_key(document: dict[str, object], key: str) -> dict[str, object] | None:
    """A copy of ``document`` without ``key`` (dotted); ``None`` when it was not set.
    Objects left empty by the removal go too, so ``unset`` undoes ``set``."""
    parts = key.split(".")
    if not all(parts):
        raise GatewayError(f'invalid key path "{key}"')
    result: dict[str, object] = json.loads(json.dumps(document))
    trail: list[dict[str, object]] = [result]
    for part in parts[:-1]:
        child = trail[-1].get(part)
        if not isinstance(child, dict):
            return None
        trail.append(child)
    if parts[-1] not in trail[-1]:
        return None
    del trail[-1][parts[-1]]
    for depth in range(len(trail) - 1, 0, -1):
        if trail[depth]:
            break
        del trail[depth - 1][parts[depth - 1]]
    return result


def unset_value(path: Path, key: str, env: Mapping[str, str]) -> bool:
    """Remove ``key`` with the same validation and atomic write as :func:`set_values`;
    False (file untouched) when it was not set."""
    document, original = read_document(path)
    updated = without_key(document, key)
    if updated is None or original is None:
        return False
    parse(json.dumps(updated), env, source=str(path))
    write_atomic(path, json.dumps(updated, indent=2) + "\n", secret=holds_secret(updated))
    return True


def holds_secret(value: object) -> bool:
    if isinstance(value, dict):
        return any(k in SECRET_KEYS or holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_secret(v) for v in value)
    return False


def read_document(path: Path) -> tuple[dict[str, object], str | None]:
    """The raw document (no defaults, ``${VAR}`` unexpanded) and the original text."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    try:
        data = json5.loads(text)
    except ValueError as exc:
        raise ConfigError(
            [f"syntax error: {exc}; fix it by hand first, the file was not changed"],
            source=str(path),
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(["expected an object at the top level"], source=str(path))
    return data, text


def set_value(path: Path, key: str, value: object, env: Mapping[str, str]) -> list[str]:
    """Set ``key`` and write the file atomically; returns notes for the user.

    Raises ConfigError (file untouched) when the result would not validate.
    """
    return set_values(path, {key: value}, env)


def set_values(path: Path, values: Mapping[str, object], env: Mapping[str, str]) -> list[str]:
    """Set several keys in one validated, atomic write. A new file is private (0600, as
    ``doctor`` wants it); an existing one keeps its mode unless it now holds a secret."""
    with write_lock(path):
        return _set_values_locked(path, values, env)


def _set_values_locked(
    path: Path, values: Mapping[str, object], env: Mapping[str, str]
) -> list[str]:
    document, original = read_document(path)
    updated = document
    for key, value in values.items():
        updated = with_value(updated, key, value)
    parse(json.dumps(updated), env, source=str(path))  # same validation as start-up
    notes = []
    if original is not None and _COMMENT.search(original):
        notes.append("note: comments in the file are not preserved by `config set`")
    private = original is None or holds_secret(updated)
    _write_unless_changed(path, original, json.dumps(updated, indent=2) + "\n", private)
    return notes


def _write_unless_changed(path: Path, original: str | None, text: str, secret: bool) -> None:
    if _text_now(path) != original:  # an editor (which takes no lock) saved meanwhile
        raise GatewayError(
            f"{path} changed while this command was updating it; nothing was written "
            "(run the command again to apply it to the new file)"
        )
    write_atomic(path, text, secret=secret)


def _text_now(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """One writer of the config file at a time (FAILURE-MODES 10): two ``config set`` runs
    at once would each read the old file and the second write would drop the first one's
    change. An exclusive ``flock`` on ``.<name>.lock`` beside the file (the real file, when
    the config is a symlink) serialises read-validate-write; the kernel drops it if the
    process dies. The lock file stays: removing it would let a waiter lock a file no one
    else sees."""
    real = path.resolve() if path.is_symlink() else path
    real.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(real.parent / f".{real.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _insert_text(text: str, parts: list[str], document: dict[str, object], value: object) -> str:
    """``text`` with ``parts`` (a key path absent from ``document``) inserted as JSON5,
    right after the ``{`` of its deepest existing parent; the caller verifies the result."""
    depth = 0
    node: object = document
    while depth < len(parts) - 1 and isinstance(node, dict) and parts[depth] in node:
        node = node[parts[depth]]
        depth += 1
    body: str = json.dumps(value)
    for part in reversed(parts[depth + 1 :]):
        body = f"{{ {json.dumps(part)}: {body} }}"
    entry = f"{json.dumps(parts[depth])}: {body}, "
    if depth == 0:
        start = text.index("{")
    else:  # the parent's key (bare or quoted) followed by its object
        key = re.escape(parts[depth - 1])
        found = list(re.finditer(rf"(?:\b{key}\b|\"{key}\"|'{key}')\s*:\s*\{{", text))
        if len(found) != 1:
            raise ValueError("parent not found once")
        start = found[0].end() - 1
    return text[: start + 1] + " " + entry + text[start + 1 :]


def add_value(path: Path, key: str, value: object, env: Mapping[str, str]) -> list[str]:
    """Set ``key`` (absent so far) keeping the rest of the file as the user wrote it --
    comments, layout, order -- when the text allows a checked insertion; otherwise as
    :func:`set_values` does. Validated like start-up; raises ConfigError (file untouched)."""
    with write_lock(path):
        document, original = read_document(path)
        expected = with_value(document, key, value)
        if original is None:
            return _set_values_locked(path, {key: value}, env)
        try:
            text = _insert_text(original, key.split("."), document, value)
            ok = json5.loads(text) == expected
        except ValueError:
            ok = False
        if not ok:
            return _set_values_locked(path, {key: value}, env)
        parse(text, env, source=str(path))  # same validation as start-up
        _write_unless_changed(path, original, text, holds_secret(expected))
    return []


def effective(path: Path, env: Mapping[str, str]) -> Config:
    return load_file(path, env).config


def as_document(value: object) -> object:
    """A config value as the file would spell it, defaults included (camelCase keys)."""
    if attrs.has(type(value)):
        return {
            camel(f.name): as_document(getattr(value, f.name))
            for f in attrs.fields(typing.cast(typing.Any, type(value)))
        }
    if isinstance(value, Mapping):  # e.g. models.providers: {name: Provider}
        return {str(k): as_document(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_document(v) for v in value]
    return value


def effective_value(path: Path, key: str, env: Mapping[str, str]) -> object:
    """The value the gateway would use (defaults filled in)."""
    return get_path(as_document(effective(path, env)), key)
