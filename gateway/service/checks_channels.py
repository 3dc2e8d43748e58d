"""Doctor's look at the messaging channels' config (CHANNELS.md 1.1, 1.2, 3.5). Read-only: the
fixes live in the config file, which doctor never rewrites."""

from __future__ import annotations

from ..channels.accounts import account_ids, resolve_telegram
from ..channels.whatsapp.config import resolve_whatsapp
from .checks import Check, Context


def check_channels(ctx: Context) -> Check:
    loaded = ctx.loaded
    channels = loaded.config.channels if loaded is not None else None
    if (
        loaded is None
        or channels is None
        or (channels.telegram is None and channels.whatsapp is None)
    ):
        return Check("channels.config", "ok", "no messaging channels configured")
    warnings: list[str] = []
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
        if acct.token_error is not None:
            warnings.append(acct.token_error)
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
