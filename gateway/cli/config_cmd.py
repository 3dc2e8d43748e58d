"""``config get|set|validate`` and ``setup``: the config file through the same validation as
start-up. Nothing here writes an invalid file; ``validate`` and ``get`` never write at all.
"""

from __future__ import annotations

import argparse
import json
import os

from rich.console import Console

from ..config.edit import effective_value, parse_value, read_document, set_value
from ..config.load import load_file
from ..config.paths import Paths
from ..errors import EX_CONFIG, ConfigError


def get_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    print(json.dumps(effective_value(paths.config_path, args.key, os.environ), indent=2))
    return 0


def set_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    value = parse_value(args.value)
    for note in set_value(paths.config_path, args.key, value, os.environ):
        err.print(note, markup=False)
    out.print(f"Set {args.key} = {json.dumps(value)} in {paths.config_path}", markup=False)
    out.print(
        "A running gateway picks this up by itself (see `gateway.reload.mode`).", markup=False
    )
    return 0


def validate_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    path = paths.config_path
    try:
        loaded = load_file(path, os.environ)
    except ConfigError as exc:
        if args.json:
            print(
                json.dumps(
                    {"valid": False, "path": str(path), "exists": True, "problems": exc.problems}
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
        print(json.dumps(report))
    else:
        where = "" if loaded.exists else " (file not found: embedded defaults)"
        out.print(f"Config OK: {path}{where}", markup=False)
        for warning in loaded.warnings:
            err.print(f"warning: {warning}", markup=False)
    return 0


def setup_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    """Create the state dir and a config with ``gateway.mode: "local"``; keep what exists."""
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    document, _ = read_document(paths.config_path)  # raises (file untouched) if unreadable
    if (
        document.get("gateway", {})
        and isinstance(document["gateway"], dict)
        and document["gateway"].get("mode") == "local"
    ):
        out.print(f"Config already set up: {paths.config_path}", markup=False)
        return 0
    set_value(paths.config_path, "gateway.mode", "local", os.environ)
    out.print(f"Config ready: {paths.config_path}", markup=False)
    out.print("Start the gateway with: smart-agent-neo gateway", markup=False)
    return 0
