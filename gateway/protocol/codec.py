"""attrs <-> wire dicts <-> JSON text, in one place.

One cattrs converter renames every field to camelCase and, when unstructuring, omits
optional fields that still hold their default (``None``), so the wire carries only what is
set. Structuring assumes the dict already passed its JSON Schema (``validate.py``); cattrs
then only builds the objects.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ..errors import PeerError
from .model import camel

T = TypeVar("T")

converter = cattrs.Converter()


def _passthrough(value: object, _type: object) -> object:
    return value


converter.register_structure_hook_func(lambda t: t is object, _passthrough)


def _structure_factory(cls: type[Any]) -> Any:
    renames: dict[str, Any] = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
    return make_dict_structure_fn(cls, converter, **renames)


def _unstructure_factory(cls: type[Any]) -> Any:
    renames: dict[str, Any] = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
    return make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True, **renames)


converter.register_structure_hook_factory(attrs.has, _structure_factory)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_factory)


def to_wire(obj: object) -> object:
    """attrs instance (or plain JSON value) -> JSON-ready value with camelCase keys."""
    return converter.unstructure(obj)


def from_wire(cls: type[T], data: object) -> T:
    """Schema-valid wire dict -> attrs instance."""
    return converter.structure(data, cls)


@attrs.frozen
class Encoded:
    """A value already serialized as JSON text: frames splice ``text`` in as it is.

    For payloads that many responses repeat unchanged (the cached health snapshot), so they
    are converted and encoded once, not once per request.
    """

    text: str


def dumps(value: object) -> str:
    """Compact JSON text; the one encoder every outbound frame goes through.

    Never raises for a string: a value orjson refuses (a big int, a non-string key, a lone
    surrogate that came from somewhere other than our decoder -- a model provider, a file)
    is encoded by the standard library, and any lone surrogate left in the text becomes
    U+FFFD, so the frame can always be sent as UTF-8 and one bad value never breaks a frame
    that many clients share.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys, surrogates, depth
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return _LONE_SURROGATE.sub("\ufffd", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (always encodable as UTF-8)."""
    return _LONE_SURROGATE.sub("\ufffd", text)


# -- the decoder ------------------------------------------------------------------------------

MAX_DEPTH = 128  # arrays/objects inside each other; orjson itself encodes at most 254 deep
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER: what every client can hold


class JsonRejected(PeerError, ValueError):
    """Inbound JSON the gateway does not accept, with a message that names the problem.

    ``syntax``: it is not JSON at all (the protocol ignores such frames after the
    handshake). Otherwise it is JSON the gateway refuses: a lone surrogate, nesting deeper
    than :data:`MAX_DEPTH`, a number beyond +-:data:`MAX_SAFE_INTEGER`. ``value`` is what
    was parsed when the problem was found after parsing (so a frame's ``id`` can still be
    answered).
    """

    def __init__(self, message: str, *, syntax: bool = False, value: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.syntax = syntax
        self.value = value


# A number that may be out of range: 16+ digits, or an exponent, right after ':' '[' or ','.
# Only a trigger for the exact check (_problem); digits inside strings may trip it too.
_BIG_NUMBER = re.compile(r"[:\[,]\s*-?(?:\d{16}|\d+(?:\.\d+)?[eE])")
_BIG_NUMBER_BYTES = re.compile(rb"[:\[,]\s*-?(?:\d{16}|\d+(?:\.\d+)?[eE])")


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse inbound JSON -- every frame and request body goes through here, and nothing
    else parses them: no fallback parser, no ``RecursionError``, no value that cannot be
    encoded again.

    Raises :class:`JsonRejected` (a ``ValueError``): not JSON, not UTF-8, a lone surrogate,
    deeper than :data:`MAX_DEPTH`, or a number beyond +-:data:`MAX_SAFE_INTEGER`.

    Cheap for ordinary frames: orjson parses (and refuses invalid UTF-8, lone surrogates,
    NaN/Infinity and anything over 1,024 levels); the walk that checks depth and numbers
    runs only when a C-speed scan of the text says it could matter.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _rejected(str(exc)) from None
    if isinstance(data, str):
        suspect = data.count("{") + data.count("[") > MAX_DEPTH or bool(_BIG_NUMBER.search(data))
    else:
        raw = bytes(data) if isinstance(data, memoryview) else data
        suspect = raw.count(b"{") + raw.count(b"[") > MAX_DEPTH or bool(
            _BIG_NUMBER_BYTES.search(raw)
        )
    if suspect:
        problem = _problem(value, (), 0)
        if problem is not None:
            raise JsonRejected(problem, value=value)
    return value


def _rejected(detail: str) -> JsonRejected:
    """orjson's message, said for a user; ``syntax`` unless the text was JSON-shaped."""
    where = detail.rsplit(": line ", 1)
    position = f" (line {where[1].split(' (', 1)[0]})" if len(where) == 2 else ""
    what = where[0]
    if "surrogate" in what and "UTF-8" not in what:
        return JsonRejected(f"a string holds a lone UTF-16 surrogate{position}")
    if "UTF-8" in what:
        return JsonRejected(f"not valid UTF-8{position}")
    if "depth" in what or "recursion" in what:
        return JsonRejected(f"nested deeper than {MAX_DEPTH} levels")
    if "infinity" in what:
        return JsonRejected(f"a number is out of range{position}")
    return JsonRejected(f"not valid JSON: {what}{position}", syntax=True)


def _problem(value: object, path: tuple[str, ...], depth: int) -> str | None:
    """The first depth or number problem in a parsed value, naming where it is."""
    kind = type(value)
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        items = value.items() if type(value) is dict else enumerate(value)  # type: ignore[arg-type]
        for key, item in items:
            found = _problem(item, (*path, str(key)), depth + 1)
            if found is not None:
                return found
        return None
    if (kind is int or kind is float) and abs(value) > MAX_SAFE_INTEGER:  # type: ignore[arg-type]
        where = ".".join(path) or "the value"
        return (
            f"{where}: number out of range ({value!r}; numbers must be within +-{MAX_SAFE_INTEGER})"
        )
    return None
