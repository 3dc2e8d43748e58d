"""``channels.whatsapp`` -> one resolved config per account (CHANNELS.md 1.2, 1.3).

Pure apart from reading an ``accessTokenFile`` (the reader is passed in). Named accounts
inherit the top-level keys, secrets included: one Meta app (``appSecret``,
``verifyToken``) and one system-user token usually serve every number of a business. The
``phoneNumberId`` is the number's own; only the default account falls back to the
top-level one, and to ``WHATSAPP_ACCESS_TOKEN`` for its token.

The default account's webhook is ``webhookPath``; the others' ``webhookPath/<accountId>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Literal

import attrs

from ...config.channels import ChunkMode, DmPolicy, GroupPolicy, WhatsAppConfig, normalize_phone
from ...config.model import Config
from ..accounts import (
    TokenCandidate,
    TokenReader,
    TokenSource,
    account_ids,
    default_account_id,
    inherited,
    pick_token,
    read_token_file,
)

ENV_ACCESS_TOKEN = "WHATSAPP_ACCESS_TOKEN"


@attrs.frozen
class WhatsAppAccountConfig:
    """One WhatsApp Business number as the transport, the webhook and the policies see it."""

    account_id: str
    name: str | None
    enabled: bool
    token: str | None = attrs.field(repr=False)  # the Graph access token
    token_source: TokenSource
    token_error: str | None
    phone_number_id: str | None
    app_secret: str | None = attrs.field(repr=False)
    verify_token: str | None = attrs.field(repr=False)
    api_base_url: str
    graph_api_version: str
    webhook_path: str
    dm_policy: DmPolicy
    allow_from: tuple[str, ...]
    text_chunk_limit: int
    chunk_mode: ChunkMode
    send_read_receipts: bool
    timeout_seconds: int | None
    config_path: str
    # what the shared policy code reads; WhatsApp Cloud has no groups in v1
    group_policy: GroupPolicy = "disabled"
    group_allow_from: tuple[str, ...] | None = None
    history_limit: int = 0
    reply_to_mode: Literal["off", "first", "all"] = "off"
    link_preview: bool = False
    mode: str = "cloud-api"

    @property
    def configured(self) -> bool:
        return bool(self.token and self.phone_number_id)

    @property
    def connection(self) -> tuple[object, ...]:
        """What the transport is built from: a change here restarts the account."""
        return (
            self.enabled,
            self.token,
            self.token_error,
            self.phone_number_id,
            self.app_secret,
            self.verify_token,
            self.api_base_url,
            self.graph_api_version,
            self.timeout_seconds,
        )

    def missing_text(self) -> str:
        missing = [
            k
            for k, v in (("phoneNumberId", self.phone_number_id), ("accessToken", self.token))
            if not v
        ]
        return (
            f"WhatsApp {' and '.join(missing) or 'credentials'} missing for account "
            f'"{self.account_id}" (set {self.config_path}.'
            f"{'/'.join(missing) or 'accessToken'}"
            + (f" or {ENV_ACCESS_TOKEN} for default" if "accessToken" in missing else "")
            + ")."
        )


def _token(
    wa: WhatsAppConfig, account_id: str, env: Mapping[str, str], reader: TokenReader
) -> tuple[str | None, TokenSource, str | None]:
    acct = wa.accounts.get(account_id)
    base = "channels.whatsapp"
    candidates: list[TokenCandidate] = []
    if acct is not None:
        candidates.append(
            (acct.access_token, acct.access_token_file, f"{base}.accounts.{account_id}")
        )
    candidates.append((wa.access_token, wa.access_token_file, base))
    env_token = env.get(ENV_ACCESS_TOKEN) if account_id == default_account_id(wa) else None
    return pick_token(candidates, "accessTokenFile", reader, env_token)


def resolve_whatsapp(
    config: Config, env: Mapping[str, str], reader: TokenReader = read_token_file
) -> dict[str, WhatsAppAccountConfig]:
    wa = config.channels.whatsapp
    if wa is None:
        return {}
    default = default_account_id(wa)
    base_path = "/" + wa.webhook_path.strip("/")
    out: dict[str, WhatsAppAccountConfig] = {}
    for account_id in account_ids(wa):
        acct = wa.accounts.get(account_id)
        pick = partial(inherited, wa, acct)
        token, source, error = _token(wa, account_id, env, reader)
        enabled = wa.enabled and (acct.enabled if acct and acct.enabled is not None else True)
        number = acct.phone_number_id if acct and acct.phone_number_id else None
        if number is None and account_id == default:
            number = wa.phone_number_id
        allow = acct.allow_from if acct and acct.allow_from is not None else wa.allow_from
        out[account_id] = WhatsAppAccountConfig(
            account_id=account_id,
            name=acct.name if acct and acct.name else (wa.name if acct is None else None),
            enabled=enabled,
            token=token,
            token_source=source,
            token_error=error,
            phone_number_id=str(number).strip() if number else None,
            app_secret=pick("app_secret"),  # type: ignore[arg-type]
            verify_token=pick("verify_token"),  # type: ignore[arg-type]
            api_base_url=str(pick("api_base_url")).rstrip("/"),
            graph_api_version=str(pick("graph_api_version")),
            webhook_path=base_path if account_id == default else f"{base_path}/{account_id}",
            dm_policy=pick("dm_policy"),  # type: ignore[arg-type]
            allow_from=tuple(e for e in (normalize_phone(x) for x in allow) if e),
            text_chunk_limit=pick("text_chunk_limit"),  # type: ignore[arg-type]
            chunk_mode=pick("chunk_mode"),  # type: ignore[arg-type]
            send_read_receipts=pick("send_read_receipts"),  # type: ignore[arg-type]
            timeout_seconds=pick("timeout_seconds"),  # type: ignore[arg-type]
            config_path=(
                f"channels.whatsapp.accounts.{account_id}" if wa.accounts else "channels.whatsapp"
            ),
        )
    return out
