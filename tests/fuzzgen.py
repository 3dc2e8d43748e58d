"""Hostile inputs, generated with hypothesis from the protocol's own JSON Schemas.

``params_for(method)`` draws a method's params from ``schemas/protocol.schema.json`` (the
same file the gateway validates against): mostly well-formed, often bent -- a value of the
wrong type, an unknown key, a hostile string (a lone surrogate escape, control characters,
a very long one), an out-of-range number, deep nesting. ``frame_text()`` makes whole frames
as the wire carries them: requests built that way, their truncations and garbage. Used by
``tests/test_hostile_fuzz.py`` (bounded, seeded, in the main suite) and by the larger
campaign ``nox -s fuzz`` (``tests/fuzz_campaign.py``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import strategies as st

from gateway.protocol.validate import bundle

Strategy = st.SearchStrategy[Any]

# Methods that would stop or restart the gateway under test if their params happened to be
# valid: their params are still fuzzed (bent), never sent well-formed.
DISRUPTIVE = frozenset({"restart"})

HOSTILE_STRINGS = (
    "",
    " ",
    "\x00",
    "\x1b[2J\x1b]0;pwned\x07",
    "\u202e\u200b\ufeff",
    "\U0001f600" * 8,
    "../../../../etc/passwd",
    "%s%n{0}${jndi:x}",
    "a" * 5000,
    "null",
    "agent:main:main",
)
HOSTILE_NUMBERS = (0, -1, 2**31, 2**53, 2**63, 2**64, -(2**63) - 1, 1e308, -1e308, 0.5, 1e-320)


def defs() -> dict[str, Any]:
    found: dict[str, Any] = bundle()["$defs"]
    return found


def methods() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = bundle()["x-methods"]
    return found


def hostile_leaf() -> Strategy:
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.sampled_from(HOSTILE_NUMBERS),
        st.booleans(),
        st.none(),
        st.text(max_size=40),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
    )


def anything(depth: int = 3) -> Strategy:
    """Any JSON value, shallow."""
    return st.recursive(
        hostile_leaf(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=8 if depth else 1,
    )


def from_schema(schema: dict[str, Any], depth: int = 0) -> Strategy:
    """Values that mostly match ``schema``; one time in a few, something else."""
    valid = _valid(schema, depth)
    return st.one_of(valid, valid, valid, hostile_leaf() if depth else anything())


def _valid(schema: dict[str, Any], depth: int) -> Strategy:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if depth > 4:
            return st.just({})
        return st.deferred(lambda: from_schema(defs()[name], depth + 1))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of(*(_valid(s, depth) for s in schema["anyOf"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*(_valid({**schema, "type": k}, depth) for k in kind))
    if kind == "object" or "properties" in schema:
        return _object(schema, depth)
    if kind == "array":
        items = schema.get("items", {})
        return st.lists(from_schema(items, depth + 1) if items else anything(), max_size=3)
    if kind == "string":
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        size = {"min_size": low, "max_size": min(high, 40) if high else 40}
        plain = st.text(**size) if not high or high >= low else st.just("x" * low)
        return st.one_of(plain, st.sampled_from([s for s in HOSTILE_STRINGS if len(s) >= low]))
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.one_of(
            st.integers(min_value=low, max_value=high), st.sampled_from(HOSTILE_NUMBERS)
        )
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return anything()


def _object(schema: dict[str, Any], depth: int) -> Strategy:
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = {k: from_schema(v, depth + 1) for k, v in props.items() if k in required}
    optional = {k: from_schema(v, depth + 1) for k, v in props.items() if k not in required}
    base = st.fixed_dictionaries(fixed, optional=optional)
    extra = st.dictionaries(st.text(max_size=10), hostile_leaf(), max_size=2)
    return st.one_of(base, st.builds(lambda a, b: {**b, **a}, base, extra))


def params_for(method: str) -> Strategy:
    name = methods()[method]["params"]
    schema = defs().get(name, {})
    if method in DISRUPTIVE:  # never an object (nor null, which means {}): always refused
        return st.one_of(
            st.lists(hostile_leaf(), max_size=2),
            st.sampled_from(HOSTILE_NUMBERS),
            st.sampled_from(HOSTILE_STRINGS),
        )
    return from_schema(schema)


def request_frame(method: str | None = None) -> Strategy:
    """A ``req`` frame (as a dict) for one of the methods, params from its schema."""
    names = sorted(methods())
    name_st = st.just(method) if method else st.sampled_from(names)
    return name_st.flatmap(
        lambda name: st.fixed_dictionaries(
            {
                "type": st.just("req"),
                "id": st.builds(lambda: str(uuid.uuid4())),
                "method": st.just(name),
                "params": params_for(name),
            }
        )
    )


def encode(value: object) -> str:
    """JSON text as a hostile client writes it: ``ensure_ascii`` keeps lone surrogates as
    ``\\ud800`` escapes on the wire."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


def frame_text() -> st.SearchStrategy[str]:
    """A whole frame: a request, a bent one, a cut one, deep nesting, or garbage."""
    req = request_frame().map(encode)
    return st.one_of(
        req,
        req,
        req.flatmap(lambda t: st.integers(0, max(0, len(t) - 1)).map(lambda n: t[:n])),
        st.builds(lambda d: "[" * d + "]" * d, st.integers(100, 3000)),
        st.builds(lambda d: '{"a":' * d + "1" + "}" * d, st.integers(100, 1500)),
        st.sampled_from(
            [
                '{"type":"req","id":"x","method":"health","params":{"s":"\\ud800"}}',
                '{"type":"req","id":"x","method":"health","params":{"n":1e400}}',
                '{"type":"req","id":"x","method":"health","params":{"n":123456789012345678901234}}',
                '{"type":"cancel","id":"nope"}',
                '{"type":"event","event":"x"}',
                "NaN",
                "",
                "\x00\x01\x02",
            ]
        ),
        st.text(max_size=200),
        anything().map(encode),
    )
