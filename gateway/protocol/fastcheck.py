"""A fast "certainly valid" check, compiled from the same JSON Schema as ``validate.py``.

jsonschema's validator costs tens of microseconds per frame even when the frame is fine,
and every request is validated twice (the frame, then its params): in the benchmarks that
was about a tenth of the gateway's CPU per request (BENCHMARKS.md). Almost every frame *is*
fine, so this module compiles each schema into a plain Python predicate that answers
"valid" quickly, and ``validate.problem`` falls back to jsonschema only when the predicate
says no -- jsonschema then decides, and writes the message the user reads.

The one rule that keeps this safe: a predicate may reject a valid value (that only costs
time), but must never accept an invalid one. So only a small subset of keywords is
compiled; a schema that uses anything else compiles to ``None`` and is always checked by
jsonschema. ``tests/test_fastcheck.py`` compares the two on generated values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[object], bool]

# Keywords that never affect validity.
_ANNOTATIONS = frozenset({"description", "title", "$comment", "default", "examples"})
_SUPPORTED = frozenset(
    {
        "type",
        "const",
        "enum",
        "anyOf",
        "properties",
        "additionalProperties",
        "required",
        "$ref",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "items",
    }
)


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not know; use jsonschema."""


def _type_check(name: str) -> Check:
    # bool is an int in Python but not an integer/number in JSON Schema. Floats are left to
    # jsonschema (it accepts 1.0 as an integer; we reject, which is allowed).
    checks: dict[str, Check] = {
        "object": lambda v: type(v) is dict,
        "array": lambda v: type(v) is list,
        "string": lambda v: type(v) is str,
        "integer": lambda v: type(v) is int,
        "number": lambda v: type(v) is int or type(v) is float,
        "boolean": lambda v: type(v) is bool,
        "null": lambda v: v is None,
    }
    if name not in checks:
        raise Unsupported(f"type {name!r}")
    return checks[name]


def _scalar_equal(expected: object) -> Check:
    # Only JSON scalars, compared with their exact type (jsonschema: 1 != true).
    if expected is not None and type(expected) not in (str, int, bool):
        raise Unsupported("const/enum with a non-scalar value")
    kind = type(expected)
    return lambda v: type(v) is kind and v == expected


def compile_schema(schema: object, defs: dict[str, Any]) -> Check:
    """A predicate that is true only for values the schema accepts; raises Unsupported."""
    return _Compiler(defs).compile(schema)


class _Compiler:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.refs: dict[str, Check] = {}

    def compile(self, schema: object) -> Check:
        if schema is True or schema == {}:
            return lambda v: True
        if schema is False:
            return lambda v: False
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        unknown = set(schema) - _SUPPORTED - _ANNOTATIONS
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"]))
        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            options = [_type_check(n) for n in names]
            checks.append(options[0] if len(options) == 1 else _any(options))
        if "const" in schema:
            checks.append(_scalar_equal(schema["const"]))
        if "enum" in schema:
            members = [_scalar_equal(e) for e in schema["enum"]]
            checks.append(lambda v: any(m(v) for m in members))
        if "anyOf" in schema:
            checks.append(_any([self.compile(s) for s in schema["anyOf"]]))
        checks += self._string(schema) + self._number(schema)
        if "items" in schema:
            item = self.compile(schema["items"])
            checks.append(lambda v: type(v) is not list or all(item(x) for x in v))
        if {"properties", "additionalProperties", "required"} & set(schema):
            checks.append(self._object(schema))
        return _all(checks)

    def _ref(self, ref: object) -> Check:
        prefix = "#/$defs/"
        if (
            not isinstance(ref, str)
            or not ref.startswith(prefix)
            or ref[len(prefix) :] not in self.defs
        ):
            raise Unsupported(f"$ref {ref!r}")
        name = ref[len(prefix) :]
        if name not in self.refs:
            # recursive schemas: look the compiled check up at call time
            self.refs[name] = lambda v: self.refs[name](v)
            self.refs[name] = self.compile(self.defs[name])
        return lambda v: self.refs[name](v)

    @staticmethod
    def _string(schema: dict[str, Any]) -> list[Check]:
        checks: list[Check] = []
        if "minLength" in schema:
            low = int(schema["minLength"])
            checks.append(lambda v: type(v) is not str or len(v) >= low)
        if "maxLength" in schema:
            high = int(schema["maxLength"])
            checks.append(lambda v: type(v) is not str or len(v) <= high)
        return checks

    @staticmethod
    def _number(schema: dict[str, Any]) -> list[Check]:
        checks: list[Check] = []
        numeric = (int, float)
        if "minimum" in schema:
            low = schema["minimum"]
            checks.append(lambda v: type(v) not in numeric or v >= low)
        if "maximum" in schema:
            high = schema["maximum"]
            checks.append(lambda v: type(v) not in numeric or v <= high)
        return checks

    def _object(self, schema: dict[str, Any]) -> Check:
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        extra_check = None if extra is True else self.compile(extra)

        def check(v: object) -> bool:
            if type(v) is not dict:
                return True  # "properties" and friends only constrain objects
            for key in required:
                if key not in v:
                    return False
            for key, value in v.items():
                prop = props.get(key)
                if prop is not None:
                    if not prop(value):
                        return False
                elif extra_check is not None and not extra_check(value):
                    return False
            return True

        return check


def _all(checks: list[Check]) -> Check:
    # unrolled for the common short lists: a generator per call costs more than the checks
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda v: a(v) and b(v)
    if len(checks) == 3:
        a, b, c = checks
        return lambda v: a(v) and b(v) and c(v)
    return lambda v: all(c(v) for c in checks)


def _any(checks: list[Check]) -> Check:
    if len(checks) == 2:
        a, b = checks
        return lambda v: a(v) or b(v)
    return lambda v: any(c(v) for c in checks)
