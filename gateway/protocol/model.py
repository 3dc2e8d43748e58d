"""How protocol types are declared.

Every wire type is an attrs class with snake_case attributes; the wire uses camelCase, and
the converter in ``codec.py`` renames every field with :func:`camel`. Constraints that JSON
Schema should enforce (lengths, bounds, descriptions) ride in field metadata through
:func:`wire`, so the schema emitted into ``schemas/`` and the classes cannot drift apart.

A class decorated with :func:`closed` rejects unknown keys (``additionalProperties: false``);
frames and connect params stay open, because newer clients add fields.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

SCHEMA_KEY = "gateway.schema"
CLOSED_ATTR = "__gateway_closed__"

# JSON values that the protocol passes through without a schema (health's per-channel map,
# request params before method lookup, ...). Typed as ``object`` so nothing pretends to know more.
JsonObject = dict[str, object]


# Word parts the wire spells in capitals (``payloadJSON``, ``paramsJSON``: PROTOCOL.md 7.11).
_ACRONYMS = {"json": "JSON"}


def camel(name: str) -> str:
    """snake_case attribute name -> camelCase wire name."""
    head, *rest = name.split("_")
    return head + "".join(_ACRONYMS.get(part) or part[:1].upper() + part[1:] for part in rest)


def schema(
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    min_items: int | None = None,
    pattern: str | None = None,
    description: str | None = None,
) -> dict[str, object]:
    """Field metadata carrying JSON Schema constraints: ``attrs.field(metadata=schema(...))``."""
    constraints: dict[str, object] = {}
    for key, value in (
        ("minLength", min_length),
        ("maxLength", max_length),
        ("minimum", minimum),
        ("maximum", maximum),
        ("minItems", min_items),
        ("pattern", pattern),
        ("description", description),
    ):
        if value is not None:
            constraints[key] = value
    return {SCHEMA_KEY: constraints}


def closed(cls: type[T]) -> type[T]:
    """Mark a wire type as rejecting unknown keys."""
    setattr(cls, CLOSED_ATTR, True)
    return cls


def is_closed(cls: type) -> bool:
    return bool(getattr(cls, CLOSED_ATTR, False))
