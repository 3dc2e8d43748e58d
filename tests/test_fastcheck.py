"""The compiled fast path never accepts what jsonschema rejects, and accepts what it should.

Values are generated from each schema in ``schemas/protocol.schema.json`` -- valid ones, and
ones with a random defect at a random depth (wrong type, missing or extra key, bound
crossed, bool for int, float for int) -- with a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest

from gateway.protocol import validate
from gateway.protocol.fastcheck import Unsupported, compile_schema

DEFS: dict[str, Any] = validate.bundle()["$defs"]
ODD_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2.0,
    "",
    "x" * 200,
    [],
    {},
    [1],
    {"a": 1},
]


class Gen:
    def __init__(self, seed: int, defect_rate: float) -> None:
        self.rng = random.Random(seed)
        self.defect_rate = defect_rate

    def value(self, schema: Any, depth: int = 0) -> object:
        rng = self.rng
        if self.defect_rate and rng.random() < self.defect_rate:
            return rng.choice(ODD_VALUES)
        if schema is True or schema == {}:
            return rng.choice(ODD_VALUES)
        if "$ref" in schema:
            return self.value(DEFS[schema["$ref"].split("/")[-1]], depth + 1)
        if "anyOf" in schema:
            return self.value(rng.choice(schema["anyOf"]), depth)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return rng.choice(schema["enum"])
        kind = schema.get("type")
        kind = rng.choice(kind) if isinstance(kind, list) else kind
        if kind == "object" or "properties" in schema:
            return self.obj(schema, depth)
        if kind == "array":
            return [
                self.value(schema.get("items", {}), depth + 1) for _ in range(rng.randint(0, 3))
            ]
        if kind == "string":
            low, high = schema.get("minLength", 0), schema.get("maxLength", 12)
            return "s" * rng.randint(low, max(low, min(high, 12)))
        if kind == "integer":
            return rng.randint(schema.get("minimum", -5), schema.get("maximum", 10**6))
        if kind == "number":
            return rng.uniform(schema.get("minimum", -5), schema.get("maximum", 1e6))
        if kind == "boolean":
            return rng.random() < 0.5
        return None

    def obj(self, schema: dict[str, Any], depth: int) -> dict[str, object]:
        rng = self.rng
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        out = {
            key: self.value(sub, depth + 1)
            for key, sub in props.items()
            if key in required or (depth < 4 and rng.random() < 0.5)
        }
        if self.defect_rate and rng.random() < self.defect_rate and out:
            out.pop(rng.choice(sorted(out)))
        if self.defect_rate and rng.random() < self.defect_rate:
            out["unexpectedKey"] = 1
        return out


@pytest.mark.parametrize("name", sorted(DEFS))
def test_fast_path_never_accepts_an_invalid_value(name: str) -> None:
    fast = validate.fast_check(name)
    assert fast is not None, f"{name} fell back to jsonschema: extend fastcheck or accept it"
    full = validate.validator(name)
    gen = Gen(seed=zlib.crc32(name.encode()), defect_rate=0.15)
    for _ in range(300):
        value = gen.value(DEFS[name])
        if fast(value):
            assert full.is_valid(value), f"{name}: fast path accepted {value!r}"


@pytest.mark.parametrize("name", sorted(DEFS))
def test_fast_path_accepts_generated_valid_values(name: str) -> None:
    fast = validate.fast_check(name)
    assert fast is not None
    full = validate.validator(name)
    gen = Gen(seed=7, defect_rate=0.0)
    for _ in range(50):
        value = gen.value(DEFS[name])
        assert full.is_valid(value), f"generator bug: {value!r}"
        assert fast(value), f"{name}: fast path rejected valid {value!r}"


def test_problem_messages_still_come_from_jsonschema() -> None:
    assert validate.problem("RequestFrame", {"type": "req", "id": "1", "method": "x"}) is None
    assert validate.problem("RequestFrame", {"type": "req", "id": "", "method": "x"}) == (
        "id: must be a non-empty string"
    )
    assert validate.problem("EmptyParams", {"x": 1}) is not None


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "integer"}, True, False),  # bool is not an integer in JSON Schema
        ({"type": "integer"}, 2.0, False),  # valid for jsonschema; rejecting is allowed
        ({"const": 1}, True, False),
        ({"minimum": 0}, -1, False),
        ({"minimum": 0}, "x", True),  # bounds constrain numbers only
        ({"required": ["a"]}, [], True),  # object keywords constrain objects only
        ({"type": "string", "maxLength": 2}, "abc", False),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"b": 1}, False),
    ],
)
def test_keyword_semantics(schema: dict[str, Any], value: object, expected: bool) -> None:
    assert compile_schema(schema, {})(value) is expected


def test_unknown_keywords_fall_back() -> None:
    with pytest.raises(Unsupported):
        compile_schema({"pattern": "^a"}, {})
