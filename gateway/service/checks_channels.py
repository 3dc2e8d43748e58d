"""Doctor's look at the messaging channels' config (CHANNELS.md 1.1, 1.2, 3.5).

Warnings only, with one repair: a Telegram ``apiBaseUrl``/``apiRoot`` that ends in
``/bot<TOKEN>`` (a full bot endpoint pasted as the root) -- ``doctor --fix`` strips the
suffix [ref], editing only those string values so the rest of the file (comments,
layout) stays as the user wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import json5

from ..channels.accounts import account_ids, resolve_telegram
from ..channels.whatsapp.config import resolve_whatsapp
from ..config.channels import bot_endpoint_suffix, strip_bot_endpoint
from ..config.edit import read_document, with_value
from ..errors import GatewayError
from ..fsutil import write_atomic
from .checks import Check, Context

Hit = tuple[str, str]  # (dotted key path, the value as written)


def bot_endpoint_roots(document: object) -> list[Hit]:
    """The Telegram API roots in a raw config document that end in ``/bot<TOKEN>``."""
    channels = document.get("channels") if isinstance(document, dict) else None
    tg = channels.get("telegram") if isinstance(channels, dict) else None
    if not isinstance(tg, dict):
        return []
    scopes: list[tuple[str, dict[str, object]]] = [("channels.telegram", tg)]
    accounts = tg.get("accounts")
    if isinstance(accounts, dict):
        scopes += [
            (f"channels.telegram.accounts.{k}", v)
            for k, v in accounts.items()
            if isinstance(v, dict)
        ]
    hits: list[Hit] = []
    for prefix, scope in scopes:
        for key in ("apiBaseUrl", "apiRoot"):
            value = scope.get(key)
            if isinstance(value, str) and bot_endpoint_suffix(value.strip()):
                hits.append((f"{prefix}.{key}", value))
    return hits


def strip_bot_endpoints(path: Path) -> str:
    """Rewrite the config file with those roots stripped; says what changed (no token)."""
    document, text = read_document(path)
    hits = bot_endpoint_roots(document)
    if not hits or text is None:
        return f"{path}: no Telegram API root ends in /bot<TOKEN> any more"
    new_text: str | None = text
    for _key, value in hits:
        fixed = strip_bot_endpoint(value.strip())
        for quote in ('"', "'"):
            literal = f"{quote}{value}{quote}"
            if new_text is not None and new_text.count(literal) == 1:
                new_text = new_text.replace(literal, f"{quote}{fixed}{quote}")
                break
        else:
            new_text = None  # written with escapes, or twice: rewrite the document instead
    expected = document
    for key, value in hits:
        expected = with_value(expected, key, strip_bot_endpoint(value.strip()))
    if new_text is None or json5.loads(new_text) != expected:
        new_text = json.dumps(expected, indent=2) + "\n"
    write_atomic(path, new_text)
    keys = ", ".join(key for key, _ in hits)
    return f"{path}: removed the trailing /bot<TOKEN> from {keys}"


def _api_root_fix(ctx: Context) -> tuple[list[str], Callable[[], str] | None]:
    path = ctx.paths.config_path
    try:
        document, _ = read_document(path)
    except GatewayError:
        return [], None
    hits = bot_endpoint_roots(document)
    if not hits:
        return [], None
    found = [
        f"{key} points at a full bot endpoint (ends in /bot<TOKEN>); it must be the Bot API "
        "root only, e.g. https://api.telegram.org (`smart-agent-neo doctor --fix` strips it)"
        for key, _ in hits
    ]
    return found, lambda: strip_bot_endpoints(path)


def check_channels(ctx: Context) -> Check:
    root_problems, fix = _api_root_fix(ctx)
    check = _check_channels(ctx, root_problems)
    if fix is not None:
        return Check(check.id, "warn" if check.status == "ok" else check.status, check.message, fix)
    return check


def _check_channels(ctx: Context, root_problems: list[str]) -> Check:
    loaded = ctx.loaded
    channels = loaded.config.channels if loaded is not None else None
    if (
        loaded is None
        or channels is None
        or (channels.telegram is None and channels.whatsapp is None)
    ):
        if root_problems:
            return Check("channels.config", "warn", "; ".join(root_problems))
        return Check("channels.config", "ok", "no messaging channels configured")
    warnings: list[str] = list(root_problems)
    summary: list[str] = []
    if channels.whatsapp is not None:
        found = resolve_whatsapp(loaded.config, ctx.host.env)
        summary.append(f"whatsapp: {len(found)} account(s) configured")
        for account_id, wa in found.items():
            if wa.token_error is not None:
                warnings.append(wa.token_error)
            elif wa.enabled and not wa.configured:
                warnings.append(wa.missing_text())
            if wa.enabled and not wa.app_secret:
                warnings.append(
                    f'{wa.config_path}: no appSecret for account "{account_id}": every webhook '
                    "POST is refused (401) until it is set"
                )
            if wa.enabled and not wa.verify_token:
                warnings.append(
                    f'{wa.config_path}: no verifyToken for account "{account_id}": Meta cannot '
                    "verify the callback URL"
                )
    if channels.telegram is None:
        if warnings:
            return Check("channels.config", "warn", "; ".join(warnings))
        return Check("channels.config", "ok", "; ".join(summary))
    tg = channels.telegram
    ids = account_ids(tg)
    if len(ids) >= 2 and tg.default_account is None and "default" not in ids:
        warnings.append(
            f"channels.telegram: {len(ids)} accounts and no defaultAccount; "
            f'"{ids[0]}" (the first by name) is the default -- set defaultAccount to choose'
        )
    for account_id, acct in resolve_telegram(loaded.config, ctx.host.env).items():
        if acct.token_error is not None and "/bot<TOKEN>" not in acct.token_error:
            warnings.append(acct.token_error)  # (an API root's problem is named above)
        elif acct.enabled and not acct.configured:
            warnings.append(
                f'{acct.config_path}: no bot token for account "{account_id}" '
                "(set botToken or tokenFile, or TELEGRAM_BOT_TOKEN for the default account)"
            )
        if any(group.require_mention is False for group in acct.groups.values()):
            warnings.append(
                f"{acct.config_path}.groups: requireMention is false, but with BotFather's "
                "privacy mode on the bot sees only mentions and replies (/setprivacy -> "
                "Disable, then re-add the bot to the group)"
            )
    if warnings:
        return Check("channels.config", "warn", "; ".join(warnings))
    return Check(
        "channels.config",
        "ok",
        "; ".join([f"telegram: {len(ids)} account(s) configured", *summary]),
    )
