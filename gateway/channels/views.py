"""What the channels look like from outside: ``channels.status``, the ``health`` block,
``linkChannel``, ``status`` lines, readiness (CHANNELS.md 2.6, 7.1, 7.2). Pure: the slots'
snapshots and the clock come in, dicts and strings go out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .supervisor import CHANNEL_LABELS, CHANNEL_ORDER

Snapshot = Mapping[str, Any]
DETAIL_LABELS = {"telegram": "Telegram Bot API", "whatsapp": "WhatsApp Cloud API"}


def order(channels: Sequence[str]) -> list[str]:
    return [c for c in CHANNEL_ORDER if c in channels]


def primary_channel(configured: Sequence[str], explicit: str | None) -> str | None:
    if explicit and explicit in configured:
        return explicit
    for channel in ("whatsapp", "telegram"):
        if channel in configured:
            return channel
    return None


def status_payload(
    accounts: Mapping[str, Sequence[Snapshot]],
    defaults: Mapping[str, str],
    now_ms: int,
) -> dict[str, Any]:
    """PROTOCOL 7.10: the ``channels.status`` result."""
    ids = order(list(accounts))
    return {
        "ts": now_ms,
        "channelOrder": ids,
        "channelLabels": {c: CHANNEL_LABELS.get(c, c) for c in ids},
        "channelDetailLabels": {c: DETAIL_LABELS.get(c, c) for c in ids},
        "channelMeta": [
            {"id": c, "label": CHANNEL_LABELS.get(c, c), "detailLabel": DETAIL_LABELS.get(c, c)}
            for c in ids
        ],
        "channels": {c: channel_summary(accounts[c], defaults.get(c)) for c in ids},
        "channelAccounts": {c: [dict(s) for s in accounts[c]] for c in ids},
        "channelDefaultAccountId": {c: defaults[c] for c in ids if c in defaults},
    }


def _default_snapshot(snaps: Sequence[Snapshot], default: str | None) -> Snapshot | None:
    return next((s for s in snaps if s["accountId"] == default), snaps[0] if snaps else None)


def channel_summary(snaps: Sequence[Snapshot], default: str | None) -> dict[str, Any]:
    main = _default_snapshot(snaps, default)
    return {
        "configured": any(s.get("configured") for s in snaps),
        "linked": bool(main and main.get("linked")),
        "running": any(s.get("running") for s in snaps),
        "connected": bool(main and main.get("connected")),
        "accountId": main["accountId"] if main else None,
        "lastError": main.get("lastError") if main else None,
    }


HEALTH_KEYS = (
    "accountId",
    "name",
    "enabled",
    "configured",
    "linked",
    "running",
    "connected",
    "state",
    "stopReason",
    "reconnectAttempts",
    "lastError",
    "lastConnectedAt",
    "lastInboundAt",
    "lastOutboundAt",
    "mode",
    "bot",
    "conflict",
    "probe",
    "lastProbeAt",
    "authAgeMs",
    "phoneNumber",
    "lastWebhookAt",
    "outbox",
)


def health_channels(
    accounts: Mapping[str, Sequence[Snapshot]], defaults: Mapping[str, str]
) -> dict[str, Any]:
    """``health.channels``: per channel ``{configured, linked, authAgeMs, probe, lastProbeAt,
    accounts:{id: subset}}``, the default account's facts at the top."""
    out: dict[str, Any] = {}
    for channel in order(list(accounts)):
        snaps = accounts[channel]
        main = _default_snapshot(snaps, defaults.get(channel))
        block: dict[str, Any] = {
            "accountId": main["accountId"] if main else None,
            "configured": any(s.get("configured") for s in snaps),
            "linked": bool(main and main.get("linked")),
            "authAgeMs": main.get("authAgeMs") if main else None,
            "probe": main.get("probe") if main else None,
            "lastProbeAt": main.get("lastProbeAt") if main else None,
            "accounts": {
                s["accountId"]: {k: s.get(k) for k in HEALTH_KEYS if k in s} for s in snaps
            },
        }
        out[channel] = block
    return out


def link_channel(
    accounts: Mapping[str, Sequence[Snapshot]],
    defaults: Mapping[str, str],
    explicit: str | None,
) -> dict[str, Any] | None:
    channel = primary_channel(list(accounts), explicit)
    if channel is None:
        return None
    main = _default_snapshot(accounts[channel], defaults.get(channel))
    return {
        "id": channel,
        "label": CHANNEL_LABELS.get(channel, channel),
        "linked": bool(main and main.get("linked") and main.get("configured")),
        "authAgeMs": main.get("authAgeMs") if main else None,
    }


def ago(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def account_line(label: str, snap: Snapshot, now_ms: int) -> str:
    """``- Telegram default: enabled, configured, linked, running, connected, in:2m ago, ...``"""
    bits: list[str] = []
    for key in ("enabled", "configured", "linked", "running", "connected"):
        if snap.get(key):
            bits.append(key)
        elif key in ("enabled", "configured", "linked") and snap.get(key) is False:
            bits.append(f"not {key}")
    if snap.get("lastInboundAt"):
        bits.append(f"in:{ago(snap['lastInboundAt'], now_ms)}")
    if snap.get("lastOutboundAt"):
        bits.append(f"out:{ago(snap['lastOutboundAt'], now_ms)}")
    if snap.get("mode"):
        bits.append(f"mode:{snap['mode']}")
    bot = snap.get("bot") or {}
    if bot.get("username"):
        bits.append(f"bot:@{bot['username']}")
    if snap.get("phoneNumber"):
        bits.append(f"phone:{snap['phoneNumber']}")
    if snap.get("dmPolicy"):
        bits.append(f"dm:{snap['dmPolicy']}")
    allow = snap.get("allowFrom") or []
    if allow:
        bits.append(
            "allow:" + ",".join(str(a) for a in allow[:2]) + ("…" if len(allow) > 2 else "")
        )
    if snap.get("tokenSource"):
        bits.append(f"token:{snap['tokenSource']}")
    state = snap.get("state")
    if state and state not in ("running",):
        text = f"state:{state}"
        if state == "backoff" and snap.get("nextRetryAt"):
            text += f" (retry in {max(0, (int(snap['nextRetryAt']) - now_ms) // 1000)}s)"
        elif state in ("stopped", "stopping") and snap.get("stopReason"):
            text += f" ({snap['stopReason']})"
        bits.append(text)
    if snap.get("conflict"):
        bits.append("conflict")
    probe = snap.get("probe")
    if isinstance(probe, Mapping):
        bits.append("works" if probe.get("ok") else "probe failed")
    audit = snap.get("audit")
    if isinstance(audit, Mapping):
        bits.append("audit ok" if audit.get("ok") else "audit failed")
    outbox = snap.get("outbox")
    if isinstance(outbox, Mapping) and outbox.get("pending"):
        bits.append(f"outbox:{outbox['pending']} pending")
    if snap.get("lastError") and state != "running":
        bits.append(f"error:{snap['lastError']}")
    elif snap.get("lastError") and snap.get("conflict"):
        bits.append(f"error:{snap['lastError']}")
    return f"- {label} {snap.get('accountId')}: " + ", ".join(bits)


def warnings(channel: str, snap: Snapshot, require_mention_off: bool) -> list[str]:
    """``- <channel> <account>: <message> (<fix>)`` lines."""
    acct = snap.get("accountId")
    out: list[str] = []
    state = snap.get("state")
    if snap.get("conflict"):
        out.append(
            f"- {channel} {acct}: getUpdates conflict: another process polls this bot token "
            "(stop the other gateway/profile/script, or rotate the token with @BotFather)"
        )
    if state == "failed":
        out.append(
            f"- {channel} {acct}: failed: {snap.get('lastError')} (fix the config; "
            f"smart-agent-neo channels start --channel {channel})"
        )
    if state == "stopped" and snap.get("stopReason") == "crash-loop-breaker":
        out.append(
            f"- {channel} {acct}: auto-start suppressed by the crash-loop breaker "
            f"(fix the cause; smart-agent-neo channels start --channel {channel})"
        )
    if snap.get("configured") and snap.get("linked") is False:
        key = "accessToken" if channel == "whatsapp" else "the token"
        out.append(f"- {channel} {acct}: not linked (check {key}; channels status --probe)")
    if require_mention_off:
        out.append(
            f"- {channel} {acct}: requireMention:false, but with BotFather privacy mode on the "
            "bot only sees mentions and replies (/setprivacy -> Disable, then re-add the bot)"
        )
    return out


def summary_lines(accounts: Mapping[str, Sequence[Snapshot]], now_ms: int) -> list[str]:
    """``status.channelSummary``: one line per account."""
    lines = []
    for channel in order(list(accounts)):
        label = CHANNEL_LABELS.get(channel, channel)
        for snap in accounts[channel]:
            state = snap.get("state")
            if snap.get("linked") and snap.get("configured"):
                head = "linked"
                if snap.get("authAgeMs") is not None:
                    head += f" (auth age {int(snap['authAgeMs']) // 60000}m)"
            elif snap.get("configured"):
                head = "not linked"
            else:
                head = "not configured"
            extra = f", {state}" if state else ""
            if snap.get("lastError") and state != "running":
                extra += f", error: {snap['lastError']}"
            lines.append(f"{label} {snap['accountId']}: {head}{extra}")
    return lines


def readiness_failures(
    accounts: Mapping[str, Sequence[Snapshot]],
    defaults: Mapping[str, str],
    explicit_primary: str | None,
    now_ms: int,
    grace_ms: int,
    backoff_since: Mapping[tuple[str, str], int],
) -> list[dict[str, Any]]:
    """Accounts that make ``/readyz`` 503 (CHANNELS.md 7.2)."""
    failing: list[dict[str, Any]] = []
    for channel, snaps in accounts.items():
        for snap in snaps:
            if not snap.get("enabled") or not snap.get("configured"):
                continue
            state = snap.get("state")
            bad = state == "failed" or (
                state == "stopped" and snap.get("stopReason") == "crash-loop-breaker"
            )
            if state == "backoff":
                since = backoff_since.get((channel, str(snap["accountId"])))
                bad = since is not None and now_ms - since > grace_ms
            if bad:
                failing.append(
                    {
                        "channel": channel,
                        "accountId": snap["accountId"],
                        "state": state,
                        "lastError": snap.get("lastError"),
                    }
                )
    link = link_channel(accounts, defaults, explicit_primary)
    if link is not None and not link["linked"]:
        channel = link["id"]
        main = _default_snapshot(accounts[channel], defaults.get(channel))
        if main is not None and not any(
            f["channel"] == channel and f["accountId"] == main["accountId"] for f in failing
        ):
            failing.append(
                {
                    "channel": channel,
                    "accountId": main["accountId"],
                    "state": main.get("state"),
                    "lastError": main.get("lastError") or "not linked",
                }
            )
    return failing
