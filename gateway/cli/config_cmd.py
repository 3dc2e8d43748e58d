"""``config get|set|unset|validate|file|schema`` and ``setup``: the config file through the
same validation as start-up. Nothing here writes an invalid file; ``validate``, ``get``,
``file`` and ``schema`` never write at all.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.console import Console

from ..agent.store import sessions_dir
from ..auth import load_or_create_token, stored_token
from ..config.edit import (
    effective_value,
    get_path,
    parse_value,
    read_document,
    set_value,
    set_values,
    unset_value,
)
from ..config.load import load_file
from ..config.model import Config
from ..config.paths import ENV_PASSWORD, ENV_TOKEN, Paths
from ..config.reload import plan_reload
from ..errors import EX_CONFIG, ConfigError, GatewayError
from ..instances import running


def get_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    print(
        json.dumps(
            effective_value(paths.config_path, args.key, os.environ), indent=2, ensure_ascii=False
        )
    )
    return 0


def set_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    value = parse_value(args.value)
    before = _current(paths)
    for note in set_value(paths.config_path, args.key, value, os.environ):
        err.print(note, markup=False)
    out.print(
        f"Set {args.key} = {json.dumps(value, ensure_ascii=False)} in {paths.config_path}",
        markup=False,
    )
    after = load_file(paths.config_path, os.environ).config
    out.print(what_happens_next(paths, before, after), markup=False)
    return 0


def unset_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    before = _current(paths)
    if not unset_value(paths.config_path, args.key, os.environ):
        out.print(f"{args.key} is not set in {paths.config_path}; nothing to remove", markup=False)
        return 0
    out.print(f"Removed {args.key} from {paths.config_path}", markup=False)
    after = load_file(paths.config_path, os.environ).config
    out.print(what_happens_next(paths, before, after), markup=False)
    return 0


def file_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    print(paths.config_path)
    return 0


def schema_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    print(json.dumps(config_schema(), indent=2, ensure_ascii=False))
    return 0


def config_schema() -> dict[str, object]:
    """The config file's JSON Schema, from the same attrs model start-up validates with.
    Every object is closed (``additionalProperties: false``): unknown keys are refused."""
    from ..protocol.schema import add_class

    defs: dict[str, dict[str, object]] = {}
    add_class(Config, defs)
    for body in defs.values():
        if body.get("type") == "object" and "properties" in body:
            body.setdefault("additionalProperties", False)
    root = dict(defs["Config"])
    properties = dict(root["properties"])  # type: ignore[call-overload]
    properties["$schema"] = {"type": "string"}
    root["properties"] = properties
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "smart-agent-neo config",
        **root,
        "$defs": defs,
    }


def _current(paths: Paths) -> Config | None:
    try:
        return load_file(paths.config_path, os.environ).config
    except ConfigError:
        return None  # the file was invalid: what the running gateway has is unknown


def what_happens_next(paths: Paths, before: Config | None, after: Config) -> str:
    """What the change does to this profile's running gateway -- as its reload mode and the
    key's reload class decide (``config.reload``), not a blanket "it picks this up"."""
    live = running(paths)
    if live is None:
        return f"No gateway of this profile is running; it applies this when it starts ({paths.cli('gateway')})."
    pid = live.pid
    restart = f"restart it to apply: {paths.cli('gateway call restart')} (or kill -USR1 {pid})"
    if before is None:
        return (
            f"The running gateway (pid {pid}) reloads the file if it watches it; if not, {restart}."
        )
    plan = plan_reload(before, after)
    decision = plan.decision
    if decision == "nothing":
        return "Nothing changed for the running gateway (the value was already in effect)."
    if decision == "ignore":
        return f"The running gateway (pid {pid}) ignores file changes (gateway.reload.mode=off); {restart}."
    if decision == "restart":
        return f"The running gateway (pid {pid}) restarts in place to apply this (same pid; clients reconnect)."
    if plan.needs_restart:  # hot mode
        ignored = ", ".join(plan.needs_restart)
        return f"The running gateway (pid {pid}) is in hot mode and ignores {ignored} until it restarts; {restart}."
    if not plan.hot:
        return f"Nothing to apply on the running gateway (pid {pid}): {', '.join(plan.paths)} is read where it is used."
    return f"The running gateway (pid {pid}) applies this at once."


def validate_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    path = paths.config_path
    try:
        loaded = load_file(path, os.environ)
    except ConfigError as exc:
        if args.json:
            print(
                json.dumps(
                    {"valid": False, "path": str(path), "exists": True, "problems": exc.problems},
                    ensure_ascii=False,
                )
            )
        else:
            err.print(f"Invalid config at {path}:", markup=False)
            for problem in exc.problems:
                err.print(f"- {problem}", markup=False)
        return EX_CONFIG
    if args.json:
        report = {
            "valid": True,
            "path": str(path),
            "exists": loaded.exists,
            "problems": [],
            "warnings": list(loaded.warnings),
        }
        print(json.dumps(report, ensure_ascii=False))
    else:
        where = "" if loaded.exists else " (file not found: embedded defaults)"
        out.print(f"Config OK: {path}{where}", markup=False)
        for warning in loaded.warnings:
            err.print(f"warning: {warning}", markup=False)
    return 0


def setup_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    """Create the state dir, a config with ``gateway.mode: "local"`` and the agents'
    workspace (``agents.defaults.workspace``, inside the profile's state dir: ``--dev``
    gets a workspace of its own) -- keeping whatever the file already says. Idempotent."""
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    document, _ = read_document(paths.config_path)  # raises (file untouched) if unreadable
    wanted: dict[str, object] = {}
    gateway = document.get("gateway")
    if not (isinstance(gateway, dict) and gateway.get("mode") == "local"):
        wanted["gateway.mode"] = "local"
    try:
        current = get_path(document, "agents.defaults.workspace")
    except GatewayError:
        current = None
    workspace = Path(str(current)).expanduser() if current else default_workspace(paths)
    chosen = getattr(args, "workspace", None)
    if chosen:  # --workspace: the user's choice replaces what the file says
        workspace = Path(chosen).expanduser().resolve()
        if str(workspace) != current:
            wanted["agents.defaults.workspace"] = str(workspace)
    elif not current:
        wanted["agents.defaults.workspace"] = str(workspace)
    session = document.get("session")
    if not (isinstance(session, dict) and "dmScope" in session):
        # one conversation per person on each channel; "main" would mix every sender's DMs
        # into one context (CHANNELS.md 5.1)
        wanted["session.dmScope"] = "per-channel-peer"
    notes = set_values(paths.config_path, wanted, os.environ) if wanted else []
    for note in notes:
        err.print(note, markup=False)
    if wanted and not document:
        out.print(f"Config ready: {paths.config_path}", markup=False)
    elif wanted:
        added = ", ".join(wanted)
        out.print(f"Config updated: {paths.config_path} (added {added})", markup=False)
    else:
        out.print(f"Config already set up: {paths.config_path}", markup=False)
    for directory in (workspace, sessions_dir(paths.state_dir)):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    out.print(f"Workspace: {workspace}", markup=False)
    token_note = ensure_token(paths)
    if token_note:
        out.print(token_note, markup=False)
    live = running(paths)
    if live is not None:
        where = f" on {live.url}" if live.url else ""
        out.print(
            f"A gateway of this profile is already running (pid {live.pid}{where}).",
            markup=False,
        )
    else:
        out.print(f"Start the gateway with: {paths.cli('gateway')}", markup=False)
    return 0


def ensure_token(paths: Paths) -> str | None:
    """OPERATIONS.md B.1: setup generates a gateway token even for loopback, when the config
    and the environment name no secret. It goes to the 0600 token file the gateway reads
    (never into the config, never printed); ``None`` when a secret is configured."""
    try:
        auth = load_file(paths.config_path, os.environ).config.gateway.auth
    except ConfigError:
        return None  # an invalid file is left as it is; `config validate` says why
    if auth.mode == "none":
        return None
    configured = auth.token or auth.password
    if configured or os.environ.get(ENV_TOKEN) or os.environ.get(ENV_PASSWORD):
        return None
    token_file = paths.token_file
    new = stored_token(token_file) is None
    load_or_create_token(token_file)
    what = "generated" if new else "already generated"
    return f"Gateway token: {what}, stored 0600 in {token_file} (read it with: cat {token_file})"


def default_workspace(paths: Paths) -> Path:
    """Where ``setup`` puts the agents' workspace: inside the profile's own state dir."""
    return paths.state_dir / "workspace"
