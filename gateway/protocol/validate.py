"""Inbound validation against the checked-in ``schemas/protocol.schema.json``.

Validators are compiled once per type on first use. Messages name the failing field with a
dotted path, because the user reads them: ``invalid system-event params: text: '' should be
non-empty``. A value first meets a compiled predicate (``fastcheck.py``) that only says
"certainly valid"; jsonschema runs when it does not, and has the last word.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from .. import packagedata
from ..errors import StartupError
from .fastcheck import Check, Unsupported, compile_schema

if TYPE_CHECKING:
    import jsonschema
    from jsonschema import Draft202012Validator

# jsonschema is imported on first use, not at start-up: with the fast path it is needed only
# for frames that look wrong, and its import was ~45 ms of the gateway's cold start.

SCHEMA_FILE = "protocol.schema.json"


@functools.cache
def bundle() -> dict[str, Any]:
    text = packagedata.read("gateway.schemas", "schemas", SCHEMA_FILE)
    data: dict[str, Any] = json.loads(text)
    return data


def load_schemas() -> None:
    """Load the schema bundle now -- at start, not on a client's first frame: without it
    every connection would be dropped after the "listening" banner. StartupError if
    it cannot be read."""
    try:
        defs = bundle()["$defs"]
    except (OSError, ValueError, KeyError) as exc:
        raise StartupError(
            f"cannot load the protocol schemas ({exc}); reinstall smart-agent-neo, or in a "
            "source checkout run `python -m gateway.schema_emit`"
        ) from None
    if not isinstance(defs, dict) or not defs:
        raise StartupError(f"the protocol schemas ({SCHEMA_FILE}) define no types")


@functools.cache
def validator(type_name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    defs = bundle()["$defs"]
    if type_name not in defs:
        raise KeyError(f"{type_name} is not in {SCHEMA_FILE}; run `nox -s schemas`")
    return Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{type_name}"})


@functools.cache
def fast_check(type_name: str) -> Check | None:
    """The compiled predicate for ``type_name``, or ``None`` if it needs jsonschema."""
    defs = bundle()["$defs"]
    if type_name not in defs:
        return None
    try:
        return compile_schema(defs[type_name], defs)
    except Unsupported:
        return None


def prime() -> None:
    """Load the bundle and compile what every connection needs, before the first client
    (serve() calls it while starting): the first handshake does not pay for it."""
    for type_name in ("RequestFrame", "ConnectParams"):
        fast_check(type_name)


def _path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts)


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "minLength" and error.validator_value == 1:
        return "must be a non-empty string"
    if error.validator == "required":
        return str(error.message).replace(" is a required property", " is required")
    if error.validator == "additionalProperties":
        return str(error.message).replace("Additional properties are not allowed", "unknown field")
    return str(error.message)


def problem(type_name: str, value: object) -> str | None:
    """``None`` if ``value`` matches the schema of ``type_name``; else one readable line."""
    fast = fast_check(type_name)
    if fast is not None and fast(value):
        return None
    errors = list(validator(type_name).iter_errors(value))
    if not errors:
        return None
    import jsonschema

    error = jsonschema.exceptions.best_match(errors)
    path = _path(error)
    # "required" errors sit on the parent object; name the missing child in the path instead
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else ""
        path = f"{path}.{missing}" if path else missing
        return f"{path}: is required"
    return f"{path}: {_describe(error)}" if path else _describe(error)
