"""Read, substitute, validate and build a :class:`Config` -- pure apart from reading the file.

Validation walks the attrs model itself, so the rules cannot drift from the types: every
problem is one line that starts with the key path and shows the bad value, e.g.
``gateway.port: expected an integer 1-65535, got "abc"``; unknown keys get a "did you
mean" hint. All problems are collected, not just the first.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

import attrs
import json5

from ..errors import ConfigError
from ..protocol.codec import from_wire
from ..protocol.model import SCHEMA_KEY, camel
from .channels import problems as channel_problems
from .hooks import problems as hook_problems
from .model import Config
from .planned import message as planned_message
from .planned import not_yet

_VAR = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")
_TOLERATED_ROOT_KEYS = {"$schema"}


@attrs.frozen
class Loaded:
    config: Config
    path: Path
    exists: bool
    warnings: tuple[str, ...] = ()


def load_file(path: Path, env: Mapping[str, str]) -> Loaded:
    """Load ``path``; a missing file means all defaults (``exists=False``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Loaded(Config(), path, exists=False)
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror}"], source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not valid UTF-8 (byte {exc.start})"], source=str(path)) from None
    config, warnings = parse(text, env, source=str(path))
    return Loaded(config, path, exists=True, warnings=tuple(warnings))


def parse(
    text: str, env: Mapping[str, str], *, source: str = "<config>"
) -> tuple[Config, list[str]]:
    try:
        raw = json5.loads(text)
    except ValueError as exc:
        raise ConfigError([f"syntax error: {_json5_message(exc)}"], source=source) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"expected an object at the top level, got {_kind(raw)}"], source=source)
    warnings: list[str] = []
    raw = substitute_env(raw, env, warnings, "")
    problems = check(Config, raw, "", root=True)
    if problems:
        raise ConfigError(problems, source=source)
    data = {k: v for k, v in raw.items() if k not in _TOLERATED_ROOT_KEYS}
    config = from_wire(Config, data)
    problems = channel_problems(config.channels, config.messages) + hook_problems(config.hooks)
    if problems:
        raise ConfigError(problems, source=source)
    return config, warnings


def _json5_message(exc: ValueError) -> str:
    # json5 reports "<string>:LINE Unexpected ..." -- keep the line, drop the fake file name
    message = str(exc)
    match = re.match(r"<string>:(\d+) (.*)", message)
    if match:
        return f"line {match.group(1)}: {match.group(2)}"
    return message


def referenced_vars(text: str) -> list[str]:
    """Names of the ``${VAR}`` references in config text (``$${VAR}`` is a literal)."""
    return sorted({m.group(2) for m in _VAR.finditer(text) if not m.group(1)})


def substitute_env(value: Any, env: Mapping[str, str], warnings: list[str], path: str) -> Any:
    """``${VAR}`` in any string; ``$${VAR}`` stays literal; a missing var is left and warned."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if name in env:
                return env[name]
            warnings.append(f"{path or '<root>'}: environment variable {name} is not set")
            return match.group(0)

        return _VAR.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: substitute_env(v, env, warnings, f"{path}.{k}" if path else k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute_env(v, env, warnings, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


# -- validation -----------------------------------------------------------------------------


def check(cls: type, raw: object, path: str, *, root: bool = False) -> list[str]:
    """All problems of ``raw`` against attrs class ``cls``; empty when valid."""
    if not isinstance(raw, dict):
        return [f"{path or '<root>'}: expected an object, got {_show(raw)}"]
    hints = typing.get_type_hints(cls)
    fields = {camel(f.name): f for f in attrs.fields(cls)}
    problems: list[str] = []
    for key, value in raw.items():
        key_path = f"{path}.{key}" if path else key
        if root and key in _TOLERATED_ROOT_KEYS:
            continue
        field = fields.get(key)
        if field is None and (planned := not_yet(key_path)) is not None:
            problems.append(planned_message(key_path, planned))
            continue
        if field is None:
            hint = difflib.get_close_matches(key, list(fields), n=1)
            suffix = f' (did you mean "{hint[0]}"?)' if hint else ""
            problems.append(f"{key_path}: unknown key{suffix}")
            continue
        problems.extend(_check_value(hints[field.name], value, key_path, field.metadata))
    for key, field in fields.items():
        if field.default is attrs.NOTHING and key not in raw:
            problems.append(f"{path}.{key}: is required" if path else f"{key}: is required")
    return problems


def _check_value(tp: Any, value: object, path: str, metadata: Mapping[str, Any]) -> list[str]:
    constraints = metadata.get(SCHEMA_KEY, {})
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return _check_value(members[0], value, path, metadata)
        # str | int (ids written as numbers or strings): any member that accepts it will do
        if any(not _check_value(m, value, path, metadata) for m in members):
            return []
        kinds = " or ".join("an integer" if m is int else "a string" for m in members)
        return [f"{path}: expected {kinds}, got {_show(value, path)}"]
    if attrs.has(tp):
        return check(tp, value, path)
    if origin is Literal:
        if value in args:
            return []
        choices = ", ".join(json.dumps(a) for a in args)
        return [f"{path}: expected one of {choices}, got {_show(value, path)}"]
    if tp is bool:
        return (
            []
            if isinstance(value, bool)
            else [f"{path}: expected true or false, got {_show(value, path)}"]
        )
    if tp is int:
        lo, hi = constraints.get("minimum"), constraints.get("maximum")
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and (lo is None or value >= lo) and (hi is None or value <= hi):
            return []
        return [f"{path}: expected {_int_range(lo, hi)}, got {_show(value, path)}"]
    if tp is str:
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {_show(value, path)}"]
        if constraints.get("minLength") and not value:
            return [f'{path}: expected a non-empty string, got ""']
        pattern = constraints.get("pattern")
        if pattern and not re.fullmatch(str(pattern), value):
            wanted = constraints.get("description") or f"a string matching {pattern}"
            return [f"{path}: expected {wanted}, got {_show(value, path)}"]
        return []
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {_show(value)}"]
        found: list[str] = []
        for key, item in value.items():
            if not key:
                found.append(f'{path}: keys must be non-empty, got ""')
            found.extend(_check_value(args[1], item, f"{path}.{key}", {}))
        return found
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {_show(value, path)}"]
        out: list[str] = []
        # a list of strings: the field's string constraints apply to each item
        item_metadata = metadata if args[0] is str else {}
        for i, item in enumerate(value):
            out.extend(_check_value(args[0], item, f"{path}[{i}]", item_metadata))
        return out
    raise TypeError(f"config validation has no rule for {tp!r} at {path}")


def _int_range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an integer {lo}-{hi}"
    if lo is not None:
        return f"an integer >= {lo}"
    return "an integer"


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


SECRET_KEYS = frozenset({"token", "password", "apiKey", "secret", "botToken"})


def _show(value: object, path: str = "") -> str:
    """The bad value for the message -- but never a secret's: a mistyped token is still one."""
    if path.rsplit(".", 1)[-1] in SECRET_KEYS:
        return f"{_kind(value)} (value hidden)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
