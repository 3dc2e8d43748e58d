"""``smart-agent-neo dashboard [--no-open] [--json] [--token-link]``: the Control UI's URL.

The URL carries no secret. ``--token-link`` prints a second link that ends in
``#token=<token>`` -- a fragment, so it never reaches a server or a log -- and only when
stdout is a terminal (a pipe or a file would keep the secret). The browser is opened with
the plain URL: a secret on a command line is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import webbrowser
from urllib.parse import quote

import attrs
from rich.console import Console

from ..auth import stored_token
from ..config.load import load_file
from ..config.paths import Paths
from ..config.target import resolve_target
from ..controlui.routing import normalize_base
from ..errors import GatewayError

DISABLED = (
    "The Control UI is turned off (gateway.controlUi.enabled is false); "
    "set it to true and restart the gateway to use the dashboard."
)


@attrs.frozen
class Dashboard:
    url: str
    base_path: str
    source: str
    running: bool


def locate(paths: Paths) -> tuple[Dashboard | None, str | None]:
    """The dashboard of this profile's gateway and the token for a link (``None`` when the
    UI is off)."""
    config = load_file(paths.config_path, os.environ).config
    ui = config.gateway.control_ui
    if not ui.enabled:
        return None, None
    target = resolve_target(paths, url=None, token=None, password=None, config=config)
    scheme, _, rest = target.url.partition("://")
    http = {"ws": "http", "wss": "https"}.get(scheme, "http")
    base = normalize_base(ui.base_path)
    url = f"{http}://{rest.rstrip('/')}{base}/"
    where = (
        f"{target.source}, port from {target.port_source}" if target.port_source else target.source
    )
    return Dashboard(url, base or "/", where, target.running), target.token


def command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    found, token = locate(paths)
    if found is None:
        if args.json:
            print(json.dumps({"enabled": False, "url": None, "opened": False}, indent=2))
            return 1
        raise GatewayError(DISABLED)
    link = None
    if args.token_link:
        if not sys.stdout.isatty():
            err.print(
                "--token-link: stdout is not a terminal, so the link is printed without the token."
            )
        elif not token:
            err.print("--token-link: no token is configured (auth mode password or none?).")
        else:
            link = f"{found.url}#token={quote(token, safe='')}"
    opened = False
    if not args.no_open:
        try:
            opened = webbrowser.open(found.url)
        except webbrowser.Error:
            opened = False
    if args.json:
        payload = {
            "enabled": True,
            "url": found.url,
            "basePath": found.base_path,
            "source": found.source,
            "running": found.running,
            "opened": opened,
        }
        if link is not None:
            payload["tokenLink"] = link
        print(json.dumps(payload, indent=2))
        return 0
    out.print(f"Dashboard: {found.url}", markup=False, highlight=False)
    if link is not None:
        out.print(f"Sign-in link (keep it private): {link}", markup=False, highlight=False)
    else:
        show = (  # a generated token lives in its own file; a configured one in the config
            f"cat {paths.token_file}"
            if token is not None and token == stored_token(paths.token_file)
            else paths.cli("config get gateway.auth.token")
        )
        out.print(f"Paste the gateway token into the page (show it: {show}).", markup=False)
    if not found.running:
        out.print(
            f"No gateway of this profile is running: start it with `{paths.cli('gateway')}`.",
            markup=False,
        )
    if not args.no_open:
        out.print(
            "Opened in your browser."
            if opened
            else "Could not open a browser here; open the URL yourself."
        )
    return 0
