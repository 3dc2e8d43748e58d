"""The config of the messaging channels and of routing: ``channels``, ``session``, ``bindings``,
``messages`` (CHANNELS.md sections 1 and 5).

Shapes only, like ``model.py``; the walker in ``load.py`` checks types and key paths. The
rules that span keys (an allowlist needs entries, one token per account, ...) are
:func:`problems`, run by ``load.parse`` after the structural check, each naming its key path.

``channels.telegram`` holds the single bot's keys and, under ``accounts``, named bots whose
unset keys inherit the top-level ones (``channels/accounts.py`` resolves them). Every
per-account key is optional here so that "unset" can be told from "set to the default".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal

import attrs

from ..protocol.codec import converter
from ..protocol.model import schema

DmPolicy = Literal["pairing", "allowlist", "open", "disabled"]
GroupPolicy = Literal["allowlist", "open", "disabled"]
ChunkMode = Literal["length", "newline"]
ReplyToMode = Literal["off", "first", "all"]
DmScope = Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"]

# allowFrom entries: numeric ids as numbers or strings, "telegram:"/"tg:" prefixes, "*"
AllowEntry = str | int
converter.register_structure_hook_func(lambda t: t == AllowEntry, lambda value, _type: value)


@attrs.frozen
class TelegramTopic:
    require_mention: bool | None = None
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    allow_from: list[AllowEntry] | None = None
    enabled: bool | None = None


@attrs.frozen
class TelegramGroup:
    """``groups.<chatId>`` (or ``groups["*"]``): who may talk to the bot in that group."""

    require_mention: bool | None = None
    group_policy: GroupPolicy | None = None
    allow_from: list[AllowEntry] | None = None
    agent_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    enabled: bool | None = None
    topics: dict[str, TelegramTopic] = attrs.field(factory=dict)


@attrs.frozen
class TelegramAccount:
    """``channels.telegram.accounts.<id>``: unset keys inherit from ``channels.telegram``."""

    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    enabled: bool | None = None
    bot_token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    token_file: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    api_base_url: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    api_root: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    proxy: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    timeout_seconds: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=600))
    dm_policy: DmPolicy | None = None
    allow_from: list[AllowEntry] | None = None
    group_policy: GroupPolicy | None = None
    group_allow_from: list[AllowEntry] | None = None
    groups: dict[str, TelegramGroup] | None = None
    text_chunk_limit: int | None = attrs.field(
        default=None, metadata=schema(minimum=1, maximum=4096)
    )
    chunk_mode: ChunkMode | None = None
    media_max_mb: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=2000))
    media_group_flush_ms: int | None = attrs.field(
        default=None, metadata=schema(minimum=0, maximum=60_000)
    )
    link_preview: bool | None = None
    reply_to_mode: ReplyToMode | None = None
    polling_stall_threshold_ms: int | None = attrs.field(
        default=None, metadata=schema(minimum=30_000, maximum=600_000)
    )
    history_limit: int | None = attrs.field(default=None, metadata=schema(minimum=0, maximum=1000))


@attrs.frozen
class TelegramConfig:
    """``channels.telegram``: the default account's keys, defaults for named accounts."""

    enabled: bool = True
    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    bot_token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    token_file: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    api_base_url: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    api_root: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    proxy: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    timeout_seconds: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=600))
    dm_policy: DmPolicy = "pairing"
    allow_from: list[AllowEntry] = attrs.field(factory=list)
    group_policy: GroupPolicy = "allowlist"
    group_allow_from: list[AllowEntry] | None = None
    groups: dict[str, TelegramGroup] = attrs.field(factory=dict)
    text_chunk_limit: int = attrs.field(default=4000, metadata=schema(minimum=1, maximum=4096))
    chunk_mode: ChunkMode = "length"
    media_max_mb: int = attrs.field(default=100, metadata=schema(minimum=1, maximum=2000))
    media_group_flush_ms: int = attrs.field(default=500, metadata=schema(minimum=0, maximum=60_000))
    link_preview: bool = True
    reply_to_mode: ReplyToMode = "off"
    polling_stall_threshold_ms: int = attrs.field(
        default=120_000, metadata=schema(minimum=30_000, maximum=600_000)
    )
    history_limit: int = attrs.field(default=50, metadata=schema(minimum=0, maximum=1000))
    default_account: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    accounts: dict[str, TelegramAccount] = attrs.field(factory=dict)


GRAPH_VERSION_PATTERN = r"v[0-9]{1,3}\.[0-9]{1,3}"
WEBHOOK_PATH_PATTERN = r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*"


@attrs.frozen
class WhatsAppAccount:
    """``channels.whatsapp.accounts.<id>``: unset keys inherit from ``channels.whatsapp``."""

    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    enabled: bool | None = None
    phone_number_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    access_token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    access_token_file: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    app_secret: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    verify_token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    api_base_url: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    graph_api_version: str | None = attrs.field(
        default=None, metadata=schema(pattern=GRAPH_VERSION_PATTERN, description='like "v24.0"')
    )
    dm_policy: DmPolicy | None = None
    allow_from: list[AllowEntry] | None = None
    text_chunk_limit: int | None = attrs.field(
        default=None, metadata=schema(minimum=1, maximum=4096)
    )
    chunk_mode: ChunkMode | None = None
    send_read_receipts: bool | None = None
    timeout_seconds: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=600))


@attrs.frozen
class WhatsAppConfig:
    """``channels.whatsapp`` (Cloud API): the default account's keys, defaults for named
    accounts (CHANNELS.md 1.2)."""

    enabled: bool = True
    name: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    phone_number_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    access_token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    access_token_file: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    app_secret: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    verify_token: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    api_base_url: str = attrs.field(
        default="https://graph.facebook.com", metadata=schema(min_length=1)
    )
    graph_api_version: str = attrs.field(
        default="v24.0", metadata=schema(pattern=GRAPH_VERSION_PATTERN, description='like "v24.0"')
    )
    webhook_path: str = attrs.field(
        default="/webhooks/whatsapp",
        metadata=schema(
            pattern=WEBHOOK_PATH_PATTERN, description='a URL path like "/webhooks/whatsapp"'
        ),
    )
    dm_policy: DmPolicy = "pairing"
    allow_from: list[AllowEntry] = attrs.field(factory=list)
    text_chunk_limit: int = attrs.field(default=4000, metadata=schema(minimum=1, maximum=4096))
    chunk_mode: ChunkMode = "length"
    send_read_receipts: bool = True
    timeout_seconds: int | None = attrs.field(default=None, metadata=schema(minimum=1, maximum=600))
    default_account: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    accounts: dict[str, WhatsAppAccount] = attrs.field(factory=dict)


@attrs.frozen
class Readiness:
    channel_grace_ms: int = attrs.field(default=120_000, metadata=schema(minimum=0))


@attrs.frozen
class OutboxConfig:
    """``outbox``: the durable outbox's policies (CHANNELS.md 6.3, 6.4)."""

    # a send whose fate is unknown (the request went out, no answer): send it once more
    # (at-least-once, a rare duplicate counted) or give up on it (at-most-once)
    ambiguous: Literal["resend", "drop"] = "resend"
    max_age_ms: int = attrs.field(
        default=86_400_000, metadata=schema(minimum=60_000, maximum=30 * 86_400_000)
    )
    # WhatsApp: how long an ambiguous part waits for a status webhook before the policy
    ambiguous_grace_ms: int = attrs.field(
        default=60_000, metadata=schema(minimum=0, maximum=3_600_000)
    )


@attrs.frozen
class SendConfig:
    """``send``: how long ``send`` waits for the first delivery attempt before answering
    ``queued`` (CHANNELS.md 5.4)."""

    ack_wait_ms: int = attrs.field(default=10_000, metadata=schema(minimum=0, maximum=120_000))


@attrs.frozen
class Channels:
    telegram: TelegramConfig | None = None
    whatsapp: WhatsAppConfig | None = None
    primary: Literal["telegram", "whatsapp"] | None = None


@attrs.frozen
class SessionConfig:
    """``session``: how inbound DMs map to sessions (CHANNELS.md 5.1)."""

    dm_scope: DmScope = "main"
    main_key: str = attrs.field(default="main", metadata=schema(min_length=1))
    identity_links: dict[str, list[str]] = attrs.field(factory=dict)


@attrs.frozen
class BindingPeer:
    kind: Literal["direct", "group"]
    id: str = attrs.field(metadata=schema(min_length=1))


@attrs.frozen
class BindingMatch:
    channel: str = attrs.field(metadata=schema(min_length=1))
    account_id: str | None = attrs.field(default=None, metadata=schema(min_length=1))
    peer: BindingPeer | None = None


@attrs.frozen
class Binding:
    """One of ``bindings``: which agent answers a channel, account or peer."""

    agent_id: str = attrs.field(metadata=schema(min_length=1))
    match: BindingMatch


@attrs.frozen
class GroupChat:
    mention_patterns: list[str] = attrs.field(factory=list)


@attrs.frozen
class Messages:
    group_chat: GroupChat = attrs.field(factory=GroupChat)


# -- rules that span keys ------------------------------------------------------------------

# a last path segment like the reference's: "bot<digits>:<secret>" (a bot endpoint)
_TOKEN_SUFFIX = re.compile(r"/bot[0-9]+(?::|%3[aA])[^/]*/*$")


def normalize_allow_entry(entry: AllowEntry) -> str:
    """``"telegram:123"`` / ``"tg:123"`` / ``123`` -> ``"123"``; ``"*"`` stays."""
    text = str(entry).strip()
    lowered = text.lower()
    for prefix in ("telegram:", "tg:"):
        if lowered.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def _policy_problems(
    path: str,
    dm_policy: DmPolicy,
    allow_from: list[AllowEntry] | None,
    normalize: Callable[[AllowEntry], str] = normalize_allow_entry,
) -> list[str]:
    entries = [normalize(e) for e in allow_from or []]
    if dm_policy == "allowlist" and not [e for e in entries if e]:
        return [f'{path}.allowFrom: dmPolicy "allowlist" needs at least one entry']
    if dm_policy == "open" and "*" not in entries:
        return [f'{path}.allowFrom: dmPolicy "open" needs "*" in allowFrom (anyone may write)']
    return []


def _entry_problems(path: str, entries: list[AllowEntry] | None) -> list[str]:
    """Sender lists hold people: positive numeric user ids (or ``"*"``). A negative id is a
    group's chat id, which belongs under ``groups`` (CHANNELS.md 3.5): refused, not ignored."""
    out = []
    for i, entry in enumerate(entries or []):
        value = normalize_allow_entry(entry)
        if re.fullmatch(r"-[0-9]+", value):
            out.append(
                f'{path}[{i}]: "{entry}" is a group chat id, not a user id: put the group under'
                " channels.telegram.groups (this list names the people who may write)"
            )
        elif value != "*" and not re.fullmatch(r"[0-9]+", value):
            out.append(
                f'{path}[{i}]: expected a numeric Telegram user id or "*", got "{entry}"'
                " (find your id: message the bot and see `pairing list`)"
            )
    return out


def _groups_problems(path: str, groups: Mapping[str, TelegramGroup] | None) -> list[str]:
    """``groups`` keys are chat ids (``-100...``) or ``"*"``, topic keys thread ids; their
    ``allowFrom`` lists are sender lists like the others."""
    out: list[str] = []
    for chat_id, group in (groups or {}).items():
        where = f"{path}.{chat_id}"
        if chat_id != "*" and not re.fullmatch(r"-?[0-9]+", chat_id):
            out.append(
                f'{where}: expected a numeric group chat id (like "-1001234567890") or "*"'
                " as the key (the log names the id of a group the bot does not know yet)"
            )
        out += _entry_problems(f"{where}.allowFrom", group.allow_from)
        for thread_id, topic in group.topics.items():
            if not re.fullmatch(r"[0-9]+", thread_id):
                out.append(f"{where}.topics.{thread_id}: expected a numeric topic (thread) id")
            out += _entry_problems(f"{where}.topics.{thread_id}.allowFrom", topic.allow_from)
    return out


def bot_endpoint_suffix(url: str) -> bool:
    """Does ``url`` end in ``/bot<TOKEN>`` (a full bot endpoint, not the API root)?"""
    return _TOKEN_SUFFIX.search(url) is not None


def strip_bot_endpoint(url: str) -> str:
    """``https://api.telegram.org/bot123:abc`` -> ``https://api.telegram.org``."""
    return _TOKEN_SUFFIX.sub("", url).rstrip("/")


def bot_endpoint_problem(path: str) -> str:
    """The text for an API root that ends in ``/bot<TOKEN>`` (never the token itself): the
    account fails with it and ``doctor --fix`` strips the suffix (CHANNELS.md 1.1)."""
    return (
        f"{path}: must be the API root without /bot<TOKEN> (e.g. https://api.telegram.org; "
        "the token belongs in botToken or tokenFile; `smart-agent-neo doctor --fix` strips it)"
    )


def _url_problems(path: str, url: str | None) -> list[str]:
    """A URL that is not http(s) is refused. A Telegram root that ends in ``/bot<TOKEN>``
    is not refused here: only that account fails (``accounts.py``), and doctor fixes it."""
    if url is None:
        return []
    if not re.match(r"https?://[^/\s]+", url):
        shown = url if not bot_endpoint_suffix(url) else strip_bot_endpoint(url) + "/bot***"
        return [f"{path}: expected an http(s) URL, got {shown!r}"[:200]]
    return []


def _account_id_problems(path: str, account_id: str) -> list[str]:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", account_id):
        return []
    return [f'{path}: account ids use letters, digits, "_" and "-" (got "{account_id}")']


def _shared_problems(base: str, key: str, owners: Mapping[str, list[str]]) -> list[str]:
    """One line per ``key`` value (a bot token, a phone number id) that several accounts
    use: ``owners`` maps each value to the accounts that have it."""
    return [
        f"{base}.accounts: duplicate {key} in accounts {', '.join(ids)}"
        for ids in owners.values()
        if len(ids) > 1
    ]


def _default_account_problems(
    base: str, default_account: str | None, accounts: Mapping[str, object]
) -> list[str]:
    if default_account is None or not accounts or default_account in accounts:
        return []
    known = ", ".join(sorted(accounts))
    return [f'{base}.defaultAccount: no account "{default_account}" (configured: {known})']


def telegram_problems(tg: TelegramConfig, base: str = "channels.telegram") -> list[str]:
    found: list[str] = []
    found += _entry_problems(f"{base}.allowFrom", tg.allow_from)
    found += _entry_problems(f"{base}.groupAllowFrom", tg.group_allow_from)
    found += _groups_problems(f"{base}.groups", tg.groups)
    found += _url_problems(f"{base}.apiBaseUrl", tg.api_base_url)
    found += _url_problems(f"{base}.apiRoot", tg.api_root)
    if tg.bot_token is not None and tg.token_file is not None:
        found.append(f"{base}.tokenFile: set botToken or tokenFile, not both")
    if not tg.accounts or "default" in tg.accounts:
        found += _policy_problems(base, tg.dm_policy, tg.allow_from)
    tokens: dict[str, list[str]] = {}
    for account_id, acct in sorted(tg.accounts.items()):
        path = f"{base}.accounts.{account_id}"
        found += _account_id_problems(path, account_id)
        found += _entry_problems(f"{path}.allowFrom", acct.allow_from)
        found += _entry_problems(f"{path}.groupAllowFrom", acct.group_allow_from)
        found += _groups_problems(f"{path}.groups", acct.groups)
        found += _url_problems(f"{path}.apiBaseUrl", acct.api_base_url)
        found += _url_problems(f"{path}.apiRoot", acct.api_root)
        if acct.bot_token is not None and acct.token_file is not None:
            found.append(f"{path}.tokenFile: set botToken or tokenFile, not both")
        policy = acct.dm_policy or tg.dm_policy
        allow = acct.allow_from if acct.allow_from is not None else tg.allow_from
        found += _policy_problems(path, policy, allow)
        token = acct.bot_token or (tg.bot_token if account_id == "default" else None)
        if token:
            tokens.setdefault(token, []).append(account_id)
    found += _shared_problems(base, "botToken", tokens)
    found += _default_account_problems(base, tg.default_account, tg.accounts)
    return found


_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def normalize_phone(entry: AllowEntry) -> str:
    """``"whatsapp:+1 555-123 4567"`` / ``15551234567`` -> ``"+15551234567"``; ``"*"`` stays."""
    text = str(entry).strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :].strip()
    if text == "*":
        return text
    compact = re.sub(r"[\s().-]", "", text)
    return compact if compact.startswith("+") else "+" + compact


def _phone_problems(path: str, entries: list[AllowEntry] | None) -> list[str]:
    out = []
    for i, entry in enumerate(entries or []):
        value = normalize_phone(entry)
        if value != "*" and not _E164.fullmatch(value):
            out.append(
                f'{path}[{i}]: expected a phone number in E.164 form (+15551234567) or "*", '
                f'got "{entry}"'
            )
    return out


def whatsapp_problems(wa: WhatsAppConfig, base: str = "channels.whatsapp") -> list[str]:
    found: list[str] = []
    found += _phone_problems(f"{base}.allowFrom", wa.allow_from)
    found += _url_problems(f"{base}.apiBaseUrl", wa.api_base_url)
    if wa.webhook_path.rstrip("/") == "":
        found.append(f'{base}.webhookPath: may not be "/" (e.g. "/webhooks/whatsapp")')
    if wa.access_token is not None and wa.access_token_file is not None:
        found.append(f"{base}.accessTokenFile: set accessToken or accessTokenFile, not both")
    if not wa.accounts or "default" in wa.accounts:
        found += _policy_problems(base, wa.dm_policy, wa.allow_from, normalize_phone)
    numbers: dict[str, list[str]] = {}
    if not wa.accounts and wa.phone_number_id:
        numbers.setdefault(wa.phone_number_id, []).append("default")
    for account_id, acct in sorted(wa.accounts.items()):
        path = f"{base}.accounts.{account_id}"
        found += _account_id_problems(path, account_id)
        found += _phone_problems(f"{path}.allowFrom", acct.allow_from)
        found += _url_problems(f"{path}.apiBaseUrl", acct.api_base_url)
        if acct.access_token is not None and acct.access_token_file is not None:
            found.append(f"{path}.accessTokenFile: set accessToken or accessTokenFile, not both")
        policy = acct.dm_policy or wa.dm_policy
        allow = acct.allow_from if acct.allow_from is not None else wa.allow_from
        found += _policy_problems(path, policy, allow, normalize_phone)
        number = acct.phone_number_id or (wa.phone_number_id if account_id == "default" else None)
        if number:
            numbers.setdefault(number, []).append(account_id)
    found += _shared_problems(base, "phoneNumberId", numbers)
    found += _default_account_problems(base, wa.default_account, wa.accounts)
    return found


def problems(channels: Channels, messages: Messages) -> list[str]:
    """Cross-key problems of a structurally valid config, one line per key path."""
    found: list[str] = []
    if channels.telegram is not None:
        found += telegram_problems(channels.telegram)
    if channels.whatsapp is not None:
        found += whatsapp_problems(channels.whatsapp)
    for i, pattern in enumerate(messages.group_chat.mention_patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            found.append(f"messages.groupChat.mentionPatterns[{i}]: invalid regex ({exc})")
    return found
