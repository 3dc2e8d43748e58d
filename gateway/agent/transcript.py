"""Transcript records (one JSON object per line) and what is built from them (pure).

Record kinds, all with ``ts`` (wall ms):

    {"type":"session", "version":1, "sessionKey"}                 first line of a file
    {"type":"message", "role":"user", "runId", "text",
     "attachments":[{type:"image"|"text", mimeType, bytes, fileName?, text?}]}
    {"type":"message", "role":"assistant", "runId", "text", "toolCalls":[{id,name,arguments}],
     "provider", "model", "stopReason", "abort":{aborted,origin,runId}?, "id"?, "label"?}
    {"type":"message", "role":"toolResult", "runId", "toolCallId", "toolName", "text", "isError"}
    {"type":"message", "role":"assistant", "mirror":true, "channel", "accountId", "messageId",
     "idempotencyKey", "part", "text"}                          delivered by `send` (outbox)
    {"type":"run", "runId", "status":"ok|error|timeout|aborted|interrupted", "summary", "durationMs"}

From them come the bounded history a model sees (:func:`model_history`) and the messages
``chat.history`` returns (:func:`chat_messages`). A run whose user message has no ``run``
record and that is not running any more was cut off by a crash: ``chat.history`` shows it
as interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import attrs

from ..protocol.agent import AbortMeta, ChatMessage, ContentBlock
from ..protocol.codec import dumps, to_wire
from .providers.base import Message, ToolCall

VERSION = 1
MAX_TEXT_CHARS = 12_000
MAX_MESSAGE_BYTES = 128 * 1024  # PROTOCOL.md 2.3: chat history caps
MAX_HISTORY_BYTES = 6 * 1024 * 1024
TRUNCATION_MARK = "\n…[truncated]"

Record = dict[str, object]


def header(session_key: str, now_ms: int) -> Record:
    return {"type": "session", "version": VERSION, "sessionKey": session_key, "ts": now_ms}


def user_message(
    run_id: str, text: str, now_ms: int, attachments: list[dict[str, object]] | None = None
) -> Record:
    record: Record = {"type": "message", "role": "user", "runId": run_id, "text": text}
    if attachments:
        record["attachments"] = attachments
    record["ts"] = now_ms
    return record


def assistant_message(
    run_id: str,
    text: str,
    calls: Iterable[ToolCall],
    now_ms: int,
    *,
    provider: str,
    model: str,
    stop_reason: str,
    abort: dict[str, object] | None = None,
) -> Record:
    record: Record = {
        "type": "message",
        "role": "assistant",
        "runId": run_id,
        "text": text,
        "ts": now_ms,
        "provider": provider,
        "model": model,
        "stopReason": stop_reason,
    }
    tool_calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    if tool_calls:
        record["toolCalls"] = tool_calls
    if abort is not None:
        record["abort"] = abort
    return record


def injected_note(message_id: str, text: str, label: str | None, now_ms: int) -> Record:
    """``chat.inject``: an assistant-visible note that no model wrote."""
    record: Record = {
        "type": "message",
        "role": "assistant",
        "id": message_id,
        "text": text,
        "ts": now_ms,
        "provider": "gateway",
        "model": "gateway-injected",
        "stopReason": "stop",
    }
    if label:
        record["label"] = label
    return record


def mirror_message(
    text: str,
    now_ms: int,
    *,
    channel: str,
    account_id: str,
    message_id: str,
    idempotency_key: str,
    part: int,
) -> Record:
    """A message the gateway delivered to a chat on the session's behalf (``send``), so
    the agent sees what was said there (CHANNELS.md 5.5)."""
    return {
        "type": "message",
        "role": "assistant",
        "text": text,
        "ts": now_ms,
        "provider": "gateway",
        "model": "delivery-mirror",
        "stopReason": "stop",
        "mirror": True,
        "channel": channel,
        "accountId": account_id,
        "messageId": message_id,
        "idempotencyKey": idempotency_key,
        "part": part,
    }


def tool_result(run_id: str, call: ToolCall, text: str, is_error: bool, now_ms: int) -> Record:
    return {
        "type": "message",
        "role": "toolResult",
        "runId": run_id,
        "toolCallId": call.id,
        "toolName": call.name,
        "text": text,
        "isError": is_error,
        "ts": now_ms,
    }


def run_end(run_id: str, status: str, summary: str, duration_ms: int, now_ms: int) -> Record:
    return {
        "type": "run",
        "runId": run_id,
        "status": status,
        "summary": summary,
        "durationMs": duration_ms,
        "ts": now_ms,
    }


def encode(records: Iterable[Record]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def decode(text: str) -> list[Record]:
    """Every well-formed record; a damaged line (hand edits) is skipped, not fatal."""
    records: list[Record] = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _str(record: Record, key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else ""


def _calls(record: Record) -> tuple[ToolCall, ...]:
    raw = record.get("toolCalls")
    if not isinstance(raw, list):
        return ()
    return tuple(
        ToolCall(str(c.get("id", "")), str(c.get("name", "")), str(c.get("arguments", "{}")))
        for c in raw
        if isinstance(c, dict)
    )


def _attachments(record: Record) -> list[dict[str, object]]:
    raw = record.get("attachments")
    return [a for a in raw if isinstance(a, dict)] if isinstance(raw, list) else []


def user_text(record: Record) -> str:
    """A user message as the model reads it: the words, each text file, a note per image."""
    pieces = [_str(record, "text")] if _str(record, "text") else []
    for a in _attachments(record):
        name = a.get("fileName") or "attachment"
        if a.get("type") == "text":
            pieces.append(f"Attached file {name} ({a.get('mimeType')}):\n{a.get('text', '')}")
        else:
            pieces.append(f"[image {name} ({a.get('mimeType')}) was attached to this message]")
    return "\n\n".join(pieces)


def model_history(records: list[Record], limit: int) -> tuple[Message, ...]:
    """The last ``limit`` messages for the model, starting at a user turn.

    Tool results whose call is not in the window, and calls whose results never came (a run
    cut off mid-step), are dropped: providers reject such half pairs.
    """
    messages: list[Message] = []
    for r in records:
        if r.get("type") != "message":
            continue
        role = r.get("role")
        if role == "user":
            messages.append(Message("user", user_text(r)))
        elif role == "assistant":
            messages.append(Message("assistant", _str(r, "text"), _calls(r)))
        elif role == "toolResult":
            messages.append(
                Message(
                    "tool",
                    _str(r, "text"),
                    tool_call_id=_str(r, "toolCallId"),
                    tool_name=_str(r, "toolName"),
                    is_error=r.get("isError") is True,
                )
            )
    window = messages[-limit:] if limit > 0 else []
    while window and window[0].role != "user":
        window.pop(0)
    answered = {m.tool_call_id for m in window if m.role == "tool"}
    called = {c.id for m in window for c in m.tool_calls}
    out: list[Message] = []
    for m in window:
        if m.role == "tool" and m.tool_call_id not in called:
            continue
        if m.tool_calls and not all(c.id in answered for c in m.tool_calls):
            if not m.text:
                continue
            m = Message("assistant", m.text)
        out.append(m)
    return tuple(out)


def _text_block(text: str, max_chars: int) -> ContentBlock:
    if len(text) > max_chars:
        return ContentBlock("text", text=text[:max_chars] + TRUNCATION_MARK, truncated=True)
    return ContentBlock("text", text=text)


def _attachment_block(a: dict[str, object], max_chars: int) -> ContentBlock:
    name = a.get("fileName")
    file_name = name if isinstance(name, str) else None
    mime = a.get("mimeType")
    size = a.get("bytes")
    if a.get("type") == "text":
        text = a.get("text")
        block = _text_block(f"Attached file {file_name or 'attachment'}:\n{text or ''}", max_chars)
        return attrs.evolve(
            block, file_name=file_name, mime_type=mime if isinstance(mime, str) else None
        )
    return ContentBlock(
        "image",
        mime_type=mime if isinstance(mime, str) else None,
        bytes=size if isinstance(size, int) and size >= 0 else None,
        file_name=file_name,
        omitted=True,
    )


def _abort(record: Record) -> AbortMeta | None:
    meta = record.get("abort")
    if not isinstance(meta, dict):
        return None
    origin = meta.get("origin")
    return AbortMeta(
        True,
        "stop-command" if origin == "stop-command" else "rpc",
        str(meta.get("runId") or record.get("runId") or ""),
    )


def _ts(record: Record) -> int:
    value = record.get("ts")
    return value if isinstance(value, int) else 0


def chat_messages(
    records: list[Record], active_run_ids: set[str], max_chars: int = MAX_TEXT_CHARS
) -> list[ChatMessage]:
    """Every message of a transcript as ``chat.history`` shows it, oldest first."""
    out: list[ChatMessage] = []
    ended = {_str(r, "runId") for r in records if r.get("type") == "run"}
    for r in records:
        kind, run_id = r.get("type"), _str(r, "runId") or None
        if kind == "run":
            status = _str(r, "status")
            if status == "ok":
                continue
            text = f"Run {status}: {_str(r, 'summary')}"
            out.append(
                ChatMessage(
                    "system",
                    [_text_block(text, max_chars)],
                    _ts(r),
                    run_id=run_id,
                    stop_reason=status,
                    error_message=_str(r, "summary"),
                )
            )
            continue
        if kind != "message":
            continue
        role = r.get("role")
        text = _str(r, "text")
        if role == "user":
            blocks = [_text_block(text, max_chars)] if text else []
            blocks += [_attachment_block(a, max_chars) for a in _attachments(r)]
            out.append(ChatMessage("user", blocks, _ts(r), run_id=run_id))
            if run_id and run_id not in ended and run_id not in active_run_ids:
                summary = "the gateway stopped before this run finished"
                out.append(
                    ChatMessage(
                        "system",
                        [ContentBlock("text", text=f"Run interrupted: {summary}")],
                        _ts(r),
                        run_id=run_id,
                        stop_reason="interrupted",
                        error_message=summary,
                    )
                )
        elif role == "assistant":
            blocks = [_text_block(text, max_chars)] if text else []
            blocks += [
                ContentBlock("toolCall", id=c.id, name=c.name, arguments=c.arguments)
                for c in _calls(r)
            ]
            out.append(
                ChatMessage(
                    "assistant",
                    blocks,
                    _ts(r),
                    run_id=run_id,
                    stop_reason=_str(r, "stopReason") or None,
                    abort=_abort(r),
                    label=_str(r, "label") or None,
                    id=_str(r, "id") or None,
                )
            )
        elif role == "toolResult":
            out.append(
                ChatMessage(
                    "toolResult",
                    [_text_block(text, max_chars)],
                    _ts(r),
                    run_id=run_id,
                    tool_call_id=_str(r, "toolCallId") or None,
                    tool_name=_str(r, "toolName") or None,
                    is_error=r.get("isError") is True,
                )
            )
    return out


def page(
    messages: list[ChatMessage], limit: int, offset: int
) -> tuple[list[ChatMessage], bool, int | None]:
    """The ``limit`` messages before the newest ``offset`` ones; ``(window, has_more, next)``."""
    end = max(0, len(messages) - offset)
    start = max(0, end - limit)
    has_more = start > 0
    return messages[start:end], has_more, (offset + (end - start)) if has_more else None


def cap_size(
    messages: list[ChatMessage],
    max_message: int = MAX_MESSAGE_BYTES,
    max_total: int = MAX_HISTORY_BYTES,
) -> list[ChatMessage]:
    """A message over ``max_message`` bytes becomes a placeholder; past ``max_total`` the
    oldest messages are left out (the newest one always stays)."""
    out: list[ChatMessage] = []
    sizes: list[int] = []
    for m in messages:
        size = len(dumps(to_wire(m)).encode())
        if size > max_message:
            note = f"[message omitted: {size} bytes is over the {max_message}-byte limit]"
            m = attrs.evolve(m, content=[ContentBlock("text", text=note, truncated=True)])
            size = len(dumps(to_wire(m)).encode())
        out.append(m)
        sizes.append(size)
    total = sum(sizes)
    start = 0
    while total > max_total and start < len(out) - 1:
        total -= sizes[start]
        start += 1
    return out[start:]
