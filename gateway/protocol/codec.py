"""attrs <-> wire dicts <-> JSON text, in one place.

One cattrs converter renames every field to camelCase and, when unstructuring, omits
optional fields that still hold their default (``None``), so the wire carries only what is
set. Structuring assumes the dict already passed its JSON Schema (``validate.py``); cattrs
then only builds the objects.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

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
    """Compact JSON text; the one encoder every outbound frame goes through."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: big ints, non-str keys, ...
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON text; raises ``ValueError`` (``json.JSONDecodeError``) when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
