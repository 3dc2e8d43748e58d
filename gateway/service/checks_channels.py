"""Doctor's look at the messaging channels' config (CHANNELS.md 1.1, 3.5). Read-only: the
fixes live in the config file, which doctor never rewrites."""

from __future__ import annotations

from ..channels.accounts import resolve_telegram, telegram_account_ids
from .checks import Check, Context


def check_channels(ctx: Context) -> Check:
    loaded = ctx.loaded
    if loaded is None or loaded.config.channels.telegram is None:
        return Check("channels.config", "ok", "no messaging channels configured")
    tg = loaded.config.channels.telegram
    warnings: list[str] = []
    ids = telegram_account_ids(tg)
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
    return Check("channels.config", "ok", f"telegram: {len(ids)} account(s) configured")
