"""Which channel accounts the config defines, each fully resolved (CHANNELS.md 1.1, 1.3).

Pure apart from reading a ``tokenFile`` (the reader is passed in). Named accounts inherit
the top-level ``channels.telegram`` keys; the token falls back to the top-level
``botToken``/``tokenFile`` and then ``TELEGRAM_BOT_TOKEN`` for the ``default`` account only.

:func:`plan_accounts` is the per-account half of the reload table: a change to a key that
the transport was built with (token, endpoint, proxy, timeouts, ``enabled``) restarts that
account; every other key is read per message, so it applies with no restart.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import attrs

from ..config.channels import (
    ChunkMode,
    DmPolicy,
    GroupPolicy,
    ReplyToMode,
    TelegramConfig,
    TelegramGroup,
    bot_endpoint_problem,
    bot_endpoint_suffix,
    normalize_allow_entry,
)
from ..config.model import Config
from ..errors import ChannelError

DEFAULT_ACCOUNT = "default"
DEFAULT_API_BASE = "https://api.telegram.org"
ENV_TELEGRAM_TOKEN = "TELEGRAM_BOT_TOKEN"
TokenSource = Literal["config", "file", "env", "none"]
TokenReader = Callable[[str], str]


class TokenFileError(ChannelError):
    """A ``tokenFile`` that cannot be used; the message names the file and the problem."""


def read_token_file(path: str) -> str:
    """The trimmed content of a regular file; symlinks and other kinds are refused."""
    p = Path(path).expanduser()
    try:
        info = os.lstat(p)
    except FileNotFoundError:
        raise TokenFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise TokenFileError(f"{path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise TokenFileError(f"{path} is a symlink (refused: point tokenFile at the file itself)")
    if not stat.S_ISREG(info.st_mode):
        raise TokenFileError(f"{path} is not a regular file")
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: cannot read ({exc})") from None
    if not text:
        raise TokenFileError(f"{path} is empty")
    return text


@attrs.frozen
class TelegramAccountConfig:
    """One Telegram bot as the transport and the policies see it."""

    account_id: str
    name: str | None
    enabled: bool
    token: str | None = attrs.field(repr=False)
    token_source: TokenSource
    # "<key path>: <why>": a tokenFile that cannot be used, a token two accounts share, an
    # API root that ends in /bot<TOKEN> -- the account is `failed` with it until fixed
    token_error: str | None
    api_base_url: str
    proxy: str | None
    timeout_seconds: int | None
    dm_policy: DmPolicy
    allow_from: tuple[str, ...]
    group_policy: GroupPolicy
    group_allow_from: tuple[str, ...] | None
    groups: Mapping[str, TelegramGroup]
    text_chunk_limit: int
    chunk_mode: ChunkMode
    media_max_mb: int
    media_group_flush_ms: int
    link_preview: bool
    reply_to_mode: ReplyToMode
    polling_stall_threshold_ms: int
    history_limit: int
    config_path: str  # "channels.telegram" or "channels.telegram.accounts.<id>"

    mode: str = "polling"

    @property
    def configured(self) -> bool:
        return self.token is not None

    def missing_text(self) -> str:
        return (
            f'Telegram bot token missing for account "{self.account_id}" (set '
            f"channels.telegram.accounts.{self.account_id}.botToken/tokenFile or "
            "TELEGRAM_BOT_TOKEN for default)."
        )

    @property
    def connection(self) -> tuple[object, ...]:
        """What the transport is built from: a change here restarts the account."""
        return (
            self.enabled,
            self.token,
            self.token_error,
            self.api_base_url,
            self.proxy,
            self.timeout_seconds,
            self.polling_stall_threshold_ms,
        )

    @property
    def bot_id_from_token(self) -> str | None:
        if not self.token:
            return None
        head = self.token.split(":", 1)[0]
        return head if head.isdigit() else None


def _allow(entries: list[str | int] | None) -> tuple[str, ...] | None:
    if entries is None:
        return None
    return tuple(e for e in (normalize_allow_entry(x) for x in entries) if e)


class ChannelSection(Protocol):
    """A channel's config section with named accounts (``channels.telegram``, ...)."""

    @property
    def accounts(self) -> Mapping[str, object]: ...
    @property
    def default_account(self) -> str | None: ...


def account_ids(section: ChannelSection) -> list[str]:
    """The named accounts, sorted; ``["default"]`` when there are none."""
    return sorted(section.accounts) if section.accounts else [DEFAULT_ACCOUNT]


def default_account_id(section: ChannelSection) -> str:
    ids = account_ids(section)
    if section.default_account and section.default_account in ids:
        return section.default_account
    return DEFAULT_ACCOUNT if DEFAULT_ACCOUNT in ids else ids[0]


def inherited(section: object, acct: object | None, name: str) -> object:
    """The account's own ``name`` key, else the channel's top-level one (named accounts
    inherit every key they do not set)."""
    value = getattr(acct, name, None) if acct is not None else None
    return getattr(section, name) if value is None else value


TokenCandidate = tuple[str | None, str | None, str]  # (token, token file, its key path)


def pick_token(
    candidates: list[TokenCandidate], file_key: str, reader: TokenReader, env_token: str | None
) -> tuple[str | None, TokenSource, str | None]:
    """``(token, source, error)`` from the first candidate that sets one (most specific
    first): its inline token, else its file -- a file that cannot be used is the error,
    named ``<key path>.<file_key>`` -- and then ``env_token`` (the environment variable, for
    the account that may use it)."""
    for token, token_file, path in candidates:
        if token:
            return token.strip(), "config", None
        if token_file:
            try:
                return reader(token_file), "file", None
            except TokenFileError as exc:
                return None, "none", f"{path}.{file_key}: {exc}"
    if env_token and env_token.strip():
        return env_token.strip(), "env", None
    return None, "none", None


def _token(
    tg: TelegramConfig,
    account_id: str,
    env: Mapping[str, str],
    reader: TokenReader,
) -> tuple[str | None, TokenSource, str | None]:
    acct = tg.accounts.get(account_id)
    base = "channels.telegram"
    candidates: list[TokenCandidate] = []
    if acct is not None:
        candidates.append((acct.bot_token, acct.token_file, f"{base}.accounts.{account_id}"))
    if account_id == DEFAULT_ACCOUNT:
        candidates.append((tg.bot_token, tg.token_file, base))
    env_token = env.get(ENV_TELEGRAM_TOKEN) if account_id == DEFAULT_ACCOUNT else None
    return pick_token(candidates, "tokenFile", reader, env_token)


def _api_root(tg: TelegramConfig, account_id: str) -> tuple[str, str]:
    """``(root, key path)``: the account's ``apiBaseUrl`` > its ``apiRoot`` (the reference's
    name) > the top-level ``apiBaseUrl`` > ``apiRoot`` > the public Bot API."""
    acct = tg.accounts.get(account_id)
    base = "channels.telegram"
    if acct is not None:
        path = f"{base}.accounts.{account_id}"
        if acct.api_base_url:
            return acct.api_base_url, f"{path}.apiBaseUrl"
        if acct.api_root:
            return acct.api_root, f"{path}.apiRoot"
    if tg.api_base_url:
        return tg.api_base_url, f"{base}.apiBaseUrl"
    if tg.api_root:
        return tg.api_root, f"{base}.apiRoot"
    return DEFAULT_API_BASE, f"{base}.apiBaseUrl"


def resolve_telegram(
    config: Config,
    env: Mapping[str, str],
    reader: TokenReader = read_token_file,
) -> dict[str, TelegramAccountConfig]:
    tg = config.channels.telegram
    if tg is None:
        return {}
    out: dict[str, TelegramAccountConfig] = {}
    for account_id in account_ids(tg):
        acct = tg.accounts.get(account_id)
        pick = partial(inherited, tg, acct)
        token, source, error = _token(tg, account_id, env, reader)
        api, api_path = _api_root(tg, account_id)
        if error is None and bot_endpoint_suffix(api):
            # a full bot endpoint as the root: this account fails, naming the key (doctor
            # --fix strips it); the other accounts and the gateway are not affected
            error = bot_endpoint_problem(api_path)
        enabled = tg.enabled and (acct.enabled if acct and acct.enabled is not None else True)
        allow = _allow(acct.allow_from if acct and acct.allow_from is not None else tg.allow_from)
        group_allow = _allow(
            acct.group_allow_from
            if acct and acct.group_allow_from is not None
            else tg.group_allow_from
        )
        out[account_id] = TelegramAccountConfig(
            account_id=account_id,
            name=acct.name if acct and acct.name else (tg.name if acct is None else None),
            enabled=enabled,
            token=token,
            token_source=source,
            token_error=error,
            api_base_url=api.rstrip("/"),
            proxy=pick("proxy"),  # type: ignore[arg-type]
            timeout_seconds=pick("timeout_seconds"),  # type: ignore[arg-type]
            dm_policy=pick("dm_policy"),  # type: ignore[arg-type]
            allow_from=allow or (),
            group_policy=pick("group_policy"),  # type: ignore[arg-type]
            group_allow_from=group_allow,
            groups=pick("groups"),  # type: ignore[arg-type]
            text_chunk_limit=pick("text_chunk_limit"),  # type: ignore[arg-type]
            chunk_mode=pick("chunk_mode"),  # type: ignore[arg-type]
            media_max_mb=pick("media_max_mb"),  # type: ignore[arg-type]
            media_group_flush_ms=pick("media_group_flush_ms"),  # type: ignore[arg-type]
            link_preview=pick("link_preview"),  # type: ignore[arg-type]
            reply_to_mode=pick("reply_to_mode"),  # type: ignore[arg-type]
            polling_stall_threshold_ms=pick("polling_stall_threshold_ms"),  # type: ignore[arg-type]
            history_limit=pick("history_limit"),  # type: ignore[arg-type]
            config_path=(
                f"channels.telegram.accounts.{account_id}" if tg.accounts else "channels.telegram"
            ),
        )
    _flag_duplicate_tokens(out)
    return out


def _flag_duplicate_tokens(accounts: dict[str, TelegramAccountConfig]) -> None:
    """Tokens from files or env can collide too: both accounts fail rather than 409 forever."""
    by_token: dict[str, list[str]] = {}
    for acct in accounts.values():
        if acct.token:
            by_token.setdefault(acct.token, []).append(acct.account_id)
    for ids in by_token.values():
        if len(ids) > 1:
            for account_id in ids:
                acct = accounts[account_id]
                accounts[account_id] = attrs.evolve(
                    acct,
                    token_error=f"{acct.config_path}: duplicate botToken in accounts {', '.join(ids)}",
                )


AccountAction = Literal["start", "stop", "restart", "hot"]


class _Planned(Protocol):
    @property
    def connection(self) -> tuple[object, ...]: ...


P = TypeVar("P", bound=_Planned)


def plan_accounts(old: Mapping[str, P], new: Mapping[str, P]) -> dict[str, AccountAction]:
    """Per-account reload actions; accounts whose config did not change are left out."""
    actions: dict[str, AccountAction] = {}
    for account_id in sorted(set(old) | set(new)):
        before, after = old.get(account_id), new.get(account_id)
        if before is None:
            actions[account_id] = "start"
        elif after is None:
            actions[account_id] = "stop"
        elif before.connection != after.connection:
            actions[account_id] = "restart"
        elif before != after:
            actions[account_id] = "hot"
    return actions
