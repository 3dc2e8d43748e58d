"""JSON Schema from the attrs wire types, and TypeScript declarations from that schema.

The bundle has one ``$defs`` entry per wire type plus an index of methods (params, result,
scope) and events (payload, droppable). It is emitted into ``schemas/protocol.schema.json``
(checked in; ``nox -s schemas`` fails when it is stale) and loaded back at runtime by
``validate.py``, so the server validates against exactly the file a reviewer can read.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, Union

import attrs

from .model import SCHEMA_KEY, camel, is_closed

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
BUNDLE_ID = "https://smart-agent-neo.invalid/schemas/protocol.schema.json"

Schema = dict[str, Any]


@attrs.frozen
class MethodEntry:
    name: str
    params: type
    result: type | None
    scope: str
    role: str = "operator"


@attrs.frozen
class EventEntry:
    name: str
    payload: type | None
    droppable: bool
    sequenced: bool = True


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin in (Union, types.UnionType) and type(None) in typing.get_args(tp)


def type_schema(tp: Any, defs: dict[str, Schema]) -> Schema:
    """Schema for one annotation; attrs classes become ``$ref``s registered in ``defs``."""
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is type(None):
        return {"type": "null"}
    if tp is object or tp is Any:
        return {}
    if attrs.has(tp):
        add_class(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": type_schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1], defs)}
    if origin in (Union, types.UnionType):
        branches = [type_schema(arg, defs) for arg in args]
        if any(b == {} for b in branches):
            return {}
        return {"anyOf": branches}
    raise TypeError(f"no JSON Schema mapping for {tp!r}")


def add_class(cls: type, defs: dict[str, Schema]) -> None:
    name = cls.__name__
    if name in defs:
        return
    defs[name] = {}  # reserve first: classes may refer to themselves
    hints = typing.get_type_hints(cls)
    properties: Schema = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        schema = type_schema(hints[field.name], defs)
        constraints = dict(field.metadata.get(SCHEMA_KEY, {}))
        if constraints:
            schema = _constrain(schema, constraints)
        properties[camel(field.name)] = schema
        if field.default is attrs.NOTHING:
            required.append(camel(field.name))
    body: Schema = {"type": "object", "properties": properties}
    if required:
        body["required"] = required
    if is_closed(cls):
        body["additionalProperties"] = False
    if cls.__doc__ and not cls.__doc__.startswith(f"{name}("):
        body["description"] = " ".join(cls.__doc__.split())
    defs[name] = body


def _constrain(schema: Schema, constraints: Schema) -> Schema:
    """Attach constraints to the non-null branch (optional fields are ``X | None``)."""
    description = constraints.pop("description", None)
    if "anyOf" in schema:
        branches = [b if b.get("type") == "null" else {**b, **constraints} for b in schema["anyOf"]]
        schema = {"anyOf": branches}
    else:
        schema = {**schema, **constraints}
    if description:
        schema["description"] = description
    return schema


def build_bundle(
    frames: Iterable[type], methods: Iterable[MethodEntry], events: Iterable[EventEntry]
) -> Schema:
    defs: dict[str, Schema] = {}
    for cls in frames:
        add_class(cls, defs)
    method_index: Schema = {}
    for m in sorted(methods, key=lambda m: m.name):
        add_class(m.params, defs)
        entry: Schema = {"params": m.params.__name__, "scope": m.scope, "role": m.role}
        if m.result is not None:
            add_class(m.result, defs)
            entry["result"] = m.result.__name__
        method_index[m.name] = entry
    event_index: Schema = {}
    for e in sorted(events, key=lambda e: e.name):
        entry = {"droppable": e.droppable, "sequenced": e.sequenced}
        if e.payload is not None:
            add_class(e.payload, defs)
            entry["payload"] = e.payload.__name__
        event_index[e.name] = entry
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": BUNDLE_ID,
        "title": "smart-agent-neo gateway protocol 4",
        "$defs": dict(sorted(defs.items())),
        "x-methods": method_index,
        "x-events": event_index,
    }


# -- TypeScript ---------------------------------------------------------------------------


def _ts_type(schema: Schema) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "const" in schema:
        return _ts_literal(schema["const"])
    if "enum" in schema:
        return " | ".join(_ts_literal(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_ts_type(b) for b in schema["anyOf"])
    kind = schema.get("type")
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        inner = _ts_type(schema.get("items", {}))
        return f"Array<{inner}>"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        value = "unknown" if extra is True else _ts_type(extra)
        return f"Record<string, {value}>"
    return "unknown"


def _ts_literal(value: object) -> str:
    return json.dumps(value)


def emit_typescript(bundle: Schema) -> str:
    lines = [
        "// Generated from schemas/protocol.schema.json by `nox -s schemas`. Do not edit.",
        "// smart-agent-neo gateway protocol 4: frames, params, results and event payloads.",
        "",
    ]
    for name, schema in bundle["$defs"].items():
        if "description" in schema:
            lines.append(f"/** {schema['description']} */")
        lines.append(f"export interface {name} {{")
        required = set(schema.get("required", []))
        for prop, prop_schema in schema.get("properties", {}).items():
            mark = "" if prop in required else "?"
            lines.append(f"  {prop}{mark}: {_ts_type(prop_schema)};")
        if schema.get("additionalProperties") is not False:
            lines.append("  [extra: string]: unknown;")
        lines.append("}")
        lines.append("")
    lines.append("export interface GatewayMethods {")
    for name, entry in bundle["x-methods"].items():
        result = entry.get("result", "unknown")
        lines.append(f"  {_ts_literal(name)}: {{ params: {entry['params']}; result: {result} }};")
    lines.append("}")
    lines.append("")
    lines.append("export interface GatewayEvents {")
    for name, entry in bundle["x-events"].items():
        lines.append(f"  {_ts_literal(name)}: {entry.get('payload', 'unknown')};")
    lines.append("}")
    lines.append("")
    lines.append("export type GatewayFrame = RequestFrame | ResponseFrame | EventFrame;")
    lines.append("")
    return "\n".join(lines)
