"""The checked-in schema and TypeScript declarations are current, and inbound validation works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.protocol.events import EVENTS
from gateway.protocol.validate import problem
from gateway.rpc.registry import methods
from gateway.schema_emit import bundle, render

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "schemas" / "protocol.schema.json"
TS_PATH = ROOT / "clients" / "typescript" / "protocol.d.ts"
STALE = "is out of date with the code; run `nox -s schemas` and commit the result"


def test_checked_in_schema_is_current() -> None:
    schema_text, _ = render()
    assert SCHEMA_PATH.read_text() == schema_text, f"{SCHEMA_PATH.relative_to(ROOT)} {STALE}"


def test_checked_in_typescript_is_current() -> None:
    _, ts_text = render()
    assert TS_PATH.read_text() == ts_text, f"{TS_PATH.relative_to(ROOT)} {STALE}"


def test_render_is_deterministic() -> None:
    assert render() == render()


def checked_in() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


def test_every_registered_method_is_indexed() -> None:
    index = checked_in()["x-methods"]
    registered = methods()
    assert registered, "no methods registered"
    missing = sorted(set(registered) - set(index))
    assert not missing, f"methods missing from the schema index: {missing}; run `nox -s schemas`"
    assert set(index) == set(registered)
    defs = checked_in()["$defs"]
    for name, entry in index.items():
        assert entry["scope"] == registered[name].scope, name
        assert entry["params"] in defs, f"{name}: params type {entry['params']} has no $defs entry"
        if "result" in entry:
            assert entry["result"] in defs, (
                f"{name}: result type {entry['result']} has no $defs entry"
            )


def test_every_event_is_indexed() -> None:
    index = checked_in()["x-events"]
    missing = sorted(set(EVENTS) - set(index))
    assert not missing, f"events missing from the schema index: {missing}; run `nox -s schemas`"
    assert set(index) == set(EVENTS)
    defs = checked_in()["$defs"]
    for name, entry in index.items():
        assert entry["droppable"] is EVENTS[name].droppable, name
        if entry.get("payload") is not None:
            assert entry["payload"] in defs, (
                f"{name}: payload {entry['payload']} has no $defs entry"
            )


def test_bundle_shape() -> None:
    data = bundle()
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = data["$defs"]
    assert isinstance(defs, dict)
    for frame in (
        "RequestFrame",
        "ResponseFrame",
        "EventFrame",
        "ErrorShape",
        "ConnectParams",
        "HelloOk",
    ):
        assert frame in defs


# -- validate.problem -----------------------------------------------------------------------


def test_valid_request_frame() -> None:
    assert problem("RequestFrame", {"type": "req", "id": "1", "method": "health"}) is None
    assert (
        problem("RequestFrame", {"type": "req", "id": "1", "method": "health", "params": {"a": 1}})
        is None
    )


def test_request_frame_tolerates_unknown_extra_keys() -> None:
    frame: dict[str, object] = {
        "type": "req",
        "id": "1",
        "method": "health",
        "params": {},
        "newerField": [1, 2],
        "x": None,
    }
    assert problem("RequestFrame", frame) is None


def test_request_frame_traceparent_limit() -> None:
    base = {"type": "req", "id": "1", "method": "health"}
    assert problem("RequestFrame", {**base, "traceparent": "t" * 128}) is None
    message = problem("RequestFrame", {**base, "traceparent": "t" * 129})
    assert message is not None
    assert message.startswith("traceparent: ")
    assert "\n" not in message


def test_request_frame_missing_id() -> None:
    assert problem("RequestFrame", {"type": "req", "method": "health"}) == "id: is required"


def test_request_frame_missing_method() -> None:
    assert problem("RequestFrame", {"type": "req", "id": "1"}) == "method: is required"


@pytest.mark.parametrize("field", ["id", "method"])
def test_request_frame_empty_strings(field: str) -> None:
    frame: dict[str, object] = {"type": "req", "id": "1", "method": "health", field: ""}
    assert problem("RequestFrame", frame) == f"{field}: must be a non-empty string"


def test_request_frame_wrong_type_field() -> None:
    message = problem("RequestFrame", {"type": "res", "id": "1", "method": "health"})
    assert message is not None
    assert message.startswith("type: ")


def test_request_frame_must_be_an_object() -> None:
    assert problem("RequestFrame", ["req"]) is not None


def test_unknown_type_name_points_to_nox() -> None:
    with pytest.raises(KeyError, match="nox -s schemas"):
        problem("NoSuchFrame", {})
