"""attrs report values -> JSON with camelCase keys, for every ``--json`` view of the CLI.

Unlike the wire codec, nothing is omitted: a script reading ``gateway status --json`` finds
every documented key, ``null`` when unknown. Mapping keys (environment variable names) are
data and keep their spelling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from ..protocol.model import camel

_converter = cattrs.Converter()
_converter.register_unstructure_hook(Path, str)


def _factory(cls: type[Any]) -> Any:
    renames: dict[str, Any] = {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}
    return make_dict_unstructure_fn(cls, _converter, **renames)


_converter.register_unstructure_hook_factory(attrs.has, _factory)


def to_json(value: object) -> Any:
    return _converter.unstructure(value)


def dumps(value: object) -> str:
    return json.dumps(to_json(value), indent=2, ensure_ascii=False)
