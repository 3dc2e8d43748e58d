"""The one JSON decoder with limits and the encoder that never breaks a frame (issue 16),
and the cleaning of client text at the edge of shared state. Pure."""

from __future__ import annotations

import json

import pytest

from gateway import edge
from gateway.protocol.codec import MAX_DEPTH, MAX_SAFE_INTEGER, JsonRejected, dumps, loads


@pytest.mark.parametrize(
    ("text", "message", "syntax"),
    [
        ('{"a":1', "not valid JSON: unexpected end of data", True),
        ("", "not valid JSON", True),
        ("NaN", "not valid JSON", True),
        ('"\\ud800"', "a string holds a lone UTF-16 surrogate", False),
        ('"\\udc00\\ud800"', "a string holds a lone UTF-16 surrogate", False),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper than 128 levels", False),
        ("[" * 5000 + "]" * 5000, "nested deeper than 128 levels", False),
        ("[1e400]", "a number is out of range", False),
        ('{"a":[9007199254740992]}', "a.0: number out of range", False),
        ('{"a":-18446744073709551616}', "a: number out of range", False),
        ('{"a":1.5e300}', "a: number out of range", False),
    ],
)
def test_refused_json_names_the_problem(text: str, message: str, syntax: bool) -> None:
    for data in (text, text.encode()):
        with pytest.raises(JsonRejected) as rejected:
            loads(data)
        assert rejected.value.message.startswith(message)
        assert rejected.value.syntax is syntax


def test_invalid_utf8_bytes_are_refused() -> None:
    with pytest.raises(JsonRejected, match="not valid UTF-8"):
        loads(b'{"a":"\xff"}')


@pytest.mark.parametrize(
    "value",
    [
        {"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER, "f": 1.5, "e": 2e15},
        {"s": "1234567890123456789012345", "t": "x:99999999999999999"},  # digits in strings
        {"pair": "\U0001f600", "nul": "\x00"},
        [[[[[]]]]],
        "x" * 10_000,
    ],
)
def test_ordinary_json_passes(value: object) -> None:
    text = json.dumps(value)
    assert loads(text) == value
    assert loads(text.encode()) == value


def test_depth_at_the_limit_passes() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(text) is not None


def test_refused_after_parsing_keeps_the_value() -> None:
    """A frame refused for a number still has its ``id`` to answer."""
    with pytest.raises(JsonRejected) as rejected:
        loads('{"id":"r1","params":{"n":1e20}}')
    assert rejected.value.value == {"id": "r1", "params": {"n": 1e20}}


def test_the_encoder_never_produces_unencodable_text() -> None:
    """A lone surrogate that did not come through the decoder (a provider, a file) must
    not break a frame shared by many clients (issue 16, high 1)."""
    text = dumps({"a": "x\ud800y", "big": 10**30, "ok": "\U0001f600"})
    text.encode()  # never raises
    assert json.loads(text) == {"a": "x\ufffdy", "big": 10**30, "ok": "\U0001f600"}


def test_clean_removes_control_characters_and_cuts() -> None:
    assert edge.clean("a\x1b[2Jb\x07\tc\x9bd") == "a[2Jb\tcd"
    assert edge.clean("line\nnext", newlines=True) == "line\nnext"
    assert edge.clean("line\nnext") == "linenext"
    assert edge.clean("x\ud800") == "x\ufffd"
    long = edge.clean("y" * 1000)
    assert len(long) == edge.FIELD_CHARS
    assert long.endswith("…")
    plain = "Zoë's laptop"
    assert edge.clean(plain) is plain
