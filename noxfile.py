"""Developer sessions: ``nox -s tests lint typecheck schemas``; ``nox -s bench`` on demand."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite against the installed package."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the client and the tests."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def schemas(session: nox.Session) -> None:
    """Regenerate schemas/ and the TypeScript types; fail if the checked-in files changed."""
    session.install("-e", ".")
    session.run("python", "-m", "gateway.schema_emit")
    session.run("git", "diff", "--exit-code", "--", "schemas", "clients/typescript", external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against a real gateway process and the stack's ceiling (BENCHMARKS.md).

    ``nox -s bench`` runs everything (~5 minutes on 2 cores); ``nox -s bench -- --quick``
    runs each load case for 1 s; any other ``python -m bench`` flag passes through.
    """
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench", *session.posargs)
