"""The error tree drawn in errors.py is the tree in the code, and each surface reads one
mapping from it (wire code, HTTP status, close code, retryable)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import gateway
from gateway import errors
from gateway.protocol.frames import CloseCode, ErrorCode

# control-flow signals that never leave their module (errors.py says why they are outside)
OUTSIDE = {"gateway.server.session.Disconnected", "gateway.protocol.fastcheck.Unsupported"}


ROOT = Path(gateway.__file__).resolve().parent


def _unimportable(name: str) -> None:
    raise AssertionError(f"{name} does not import: its exception classes cannot be checked")


def every_module() -> list[str]:
    """Every module of the gateway package -- each .py file under gateway/, and the walk of
    the package must reach all of them (a directory without __init__.py would be skipped)."""
    walked = {
        info.name
        for info in pkgutil.walk_packages(gateway.__path__, "gateway.", onerror=_unimportable)
    }
    on_disk = {
        ".".join(("gateway", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for path in ROOT.rglob("*.py")
    } - {"gateway"}
    assert on_disk <= walked, f"modules the walk does not reach: {sorted(on_disk - walked)}"
    return sorted(walked)


def every_exception_class() -> dict[str, type[BaseException]]:
    """Every exception class defined in the gateway package, by name (all modules imported)."""
    for name in every_module():
        if not name.endswith("__main__"):
            importlib.import_module(name)
    found: dict[str, type[BaseException]] = {}
    for name, module in list(sys.modules.items()):
        if name != "gateway" and not name.startswith("gateway."):
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException):
                if value.__module__ == name:
                    assert found.get(value.__name__, value) is value, f"two {value.__name__}"
                    found[value.__name__] = value
    return found


def nested_classes(tree: ast.AST, inside: bool = False) -> list[ast.ClassDef]:
    """Class statements inside a function or another class."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef) and inside:
            found.append(node)
        scope = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        found += nested_classes(node, inside or scope)
    return found


def test_exception_classes_are_defined_where_the_tree_test_sees_them() -> None:
    """A class statement inside a function or another class is invisible to the walk
    above (it reads module attributes): no exception class may be defined there."""
    known = set(every_exception_class())
    for path in ROOT.rglob("*.py"):
        for node in nested_classes(ast.parse(path.read_text(), str(path))):
            bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
            exceptional = bases & known or any(
                b.endswith(("Error", "Exception", "Exit", "Interrupt")) for b in bases
            )
            assert not exceptional, f"{path}:{node.lineno}: {node.name} is not at module level"


def drawn_tree() -> list[tuple[int, str]]:
    """(depth, class name) for every class line of the tree in errors.py's docstring."""
    rows = []
    for line in (errors.__doc__ or "").splitlines():
        if line.startswith("    GatewayError "):
            rows.append((0, "GatewayError"))
            continue
        found = re.match(r"^    ((?:[│ ]   )*)[├└]── ([A-Z]\w+)\s", line)
        if found:
            rows.append((len(found.group(1)) // 4 + 1, found.group(2)))
    return rows


def test_the_drawn_tree_is_the_class_tree() -> None:
    classes = every_exception_class()
    rows = drawn_tree()
    assert rows[0] == (0, "GatewayError")
    parents: list[str] = []
    for depth, name in rows:
        del parents[depth:]
        assert name in classes, f"{name} is drawn in errors.py but does not exist"
        if parents:
            base = classes[parents[-1]]
            assert classes[name].__bases__[0] is base, f"{name} is not under {parents[-1]}"
        parents.append(name)
    drawn = {name for _, name in rows}
    for name, cls in classes.items():
        if issubclass(cls, errors.GatewayError):
            assert name in drawn or cls is errors.RpcError, f"{name} is not drawn in errors.py"
        else:
            assert f"{cls.__module__}.{name}" in OUTSIDE, f"{name} is outside the error tree"


@pytest.mark.parametrize(
    ("error", "code", "status", "close", "retryable"),
    [
        (errors.InvalidRequest("x"), ErrorCode.INVALID_REQUEST, 400, CloseCode.POLICY, None),
        (errors.Forbidden("x"), ErrorCode.FORBIDDEN, 403, CloseCode.POLICY, None),
        (errors.NotPaired("x"), ErrorCode.NOT_PAIRED, 403, CloseCode.POLICY, None),
        (errors.RateLimited("x"), ErrorCode.INVALID_REQUEST, 429, CloseCode.POLICY, True),
        (errors.PayloadTooLarge("x"), ErrorCode.INVALID_REQUEST, 413, CloseCode.TOO_BIG, None),
        (errors.Unavailable("x"), ErrorCode.UNAVAILABLE, 503, CloseCode.TRY_AGAIN_LATER, True),
        (errors.GatewayFault("x"), ErrorCode.UNAVAILABLE, 500, CloseCode.INTERNAL_ERROR, None),
        (errors.AgentTimeout("x"), ErrorCode.AGENT_TIMEOUT, 504, CloseCode.INTERNAL_ERROR, None),
        (
            errors.RpcError(ErrorCode.FORBIDDEN, "x"),
            ErrorCode.FORBIDDEN,
            403,
            CloseCode.POLICY,
            None,
        ),
        (
            errors.SelectError("x", status=404),
            ErrorCode.INVALID_REQUEST,
            404,
            CloseCode.POLICY,
            None,
        ),
    ],
)
def test_one_mapping_for_every_surface(
    error: errors.GatewayError, code: str, status: int, close: int, retryable: bool | None
) -> None:
    assert (error.code, error.http_status, error.close_code) == (code, status, close)
    shape = error.shape()
    assert (shape.code, shape.message, shape.retryable) == (code, "x", retryable)


def test_an_instance_narrows_its_class() -> None:
    error = errors.Unavailable(
        "gateway starting; retry shortly", close_reason="gateway starting", retry_after_ms=500
    )
    assert error.close_reason == "gateway starting"
    assert error.shape().retry_after_ms == 500
    assert errors.Unavailable("x", retryable=False).retryable is False
    assert errors.Unavailable("y").retryable is True  # the class default is untouched
