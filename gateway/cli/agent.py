"""``smart-agent-neo agent --message TEXT``: one agent run over the control plane.

The reply is printed as it streams (``agent`` events of this run), then a one-line summary;
``--json`` prints only the final payload (or the error) as JSON. Exit 0 when the run ends
ok, 1 on any error or timeout. Interrupting (Ctrl-C) or running out of ``--timeout`` aborts
the run on the gateway too (``agent.abort``), so nothing keeps running unseen.

``--local`` runs the turn in this process instead (OPERATIONS.md F.9): the gateway's own
``AgentService`` under a nursery of ours, with the same config, sessions and transcripts in
the state dir; the reply is printed whole (no stream) in the same shapes. When the gateway
cannot be reached at all (no handshake answer), the command falls back to that embedded run
with a one-line note on stderr; auth and validation errors never fall back.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

import attrs
import trio
from gateway_client import GatewayClientError, GatewayConnectError, GatewayRpcError, open_client
from rich.console import Console, RenderableType
from rich.text import Text

from ..config.paths import Paths
from ..config.target import Target, resolve_target, where_we_looked
from ..errors import GatewayError, PeerError, RpcError
from . import interrupt

DEFAULT_TIMEOUT_S = 600  # agents.defaults.timeoutSeconds' default; the gateway's config decides
CONNECT_MARGIN_S = 30.0  # on top of the run's own timeout: the gateway answers first
CONNECT_S = 10.0
ABORT_BUDGET_S = 3.0
PRINTER_GRACE_S = 1.0
EVENT_BUFFER = 4096
SELECTORS_REQUIRED = (
    "agent: pass --to, --session-id or --agent to choose the session "
    "(e.g. --agent main for the default agent's main session)"
)


@attrs.frozen
class AgentRunReport:
    """The line after a streamed reply: which run, which model, how long, how many tokens."""

    payload: dict[str, Any]

    def __rich__(self) -> RenderableType:
        result = self.payload.get("result") or {}
        meta = result.get("meta") or {}
        agent = meta.get("agentMeta") or {}
        usage = agent.get("usage") or {}
        seconds = int(meta.get("durationMs", 0)) / 1000
        parts = [
            f"run {self.payload.get('runId', '?')}",
            f"{agent.get('provider', '?')}/{agent.get('model', '?')}",
            f"{seconds:.1f}s",
        ]
        if usage:
            parts.append(f"{usage.get('input', 0)} in / {usage.get('output', 0)} out tokens")
        if result.get("deliveryStatus"):
            parts.append(f"delivery: {result['deliveryStatus']}")
        return Text(" · ".join(parts), style="dim")


def build_params(args: argparse.Namespace, key: str) -> dict[str, Any]:
    if not args.message.strip():
        raise GatewayError("--message must not be empty")
    if not (args.to or args.session or args.agent):
        raise GatewayError(SELECTORS_REQUIRED)
    params: dict[str, Any] = {"message": args.message, "idempotencyKey": key}
    if args.session:
        params["sessionKey"] = args.session
    if args.agent:
        params["agentId"] = args.agent
    for flag, key in (
        ("to", "to"),
        ("channel", "channel"),
        ("account", "accountId"),
        ("thread_id", "threadId"),
        ("reply_to", "replyTo"),
        ("reply_channel", "replyChannel"),
        ("reply_account", "replyAccountId"),
        ("thinking", "thinking"),
    ):
        value = getattr(args, flag, None)
        if value:
            params[key] = value
    if getattr(args, "deliver", False):
        params["deliver"] = True
    if getattr(args, "best_effort_deliver", False):
        if not params.get("deliver"):
            raise GatewayError("--best-effort-deliver needs --deliver")
        params["bestEffortDeliver"] = True
    if args.timeout is not None:
        if args.timeout <= 0:
            raise GatewayError(
                f"--timeout: expected a positive number of seconds, got {args.timeout}"
            )
        params["timeout"] = args.timeout
    return params


async def _print_stream(
    events: trio.MemoryReceiveChannel[dict[str, Any]],
    run_id: str,
    streamed: list[str],
    finished: trio.Event,
) -> None:
    async for frame in events:
        payload = frame.get("payload") or {}
        if frame.get("event") != "agent" or payload.get("runId") != run_id:
            continue
        data = payload.get("data") or {}
        if payload.get("stream") == "assistant" and isinstance(data.get("delta"), str):
            streamed.append(data["delta"])
            sys.stdout.write(data["delta"])
            sys.stdout.flush()
        elif payload.get("stream") == "lifecycle" and data.get("phase") in ("end", "error"):
            break
    finished.set()


async def run_once(
    args: argparse.Namespace, target: Target, params: dict[str, Any], streamed: list[str]
) -> Any:
    """Open a client, start the run, stream it (unless --json), return the final payload."""
    run_id = params["idempotencyKey"]
    call_timeout = (args.timeout or DEFAULT_TIMEOUT_S) + CONNECT_MARGIN_S
    async with (
        open_client(
            target.url, token=target.token, password=target.password, connect_timeout=CONNECT_S
        ) as client,
        client.subscribe({"agent"}, buffer=EVENT_BUFFER) as events,
    ):
        finished = trio.Event()
        async with trio.open_nursery() as nursery:
            if not args.json:
                nursery.start_soon(_print_stream, events, run_id, streamed, finished)
            try:
                final = await client.call("agent", params, timeout=call_timeout, expect_final=True)
            except GatewayRpcError:
                raise
            except BaseException:
                # timed out or interrupted: don't leave the run going on unseen
                with trio.CancelScope(shield=True), trio.move_on_after(ABORT_BUDGET_S):
                    try:
                        await client.call("agent.abort", {"runId": run_id}, timeout=ABORT_BUDGET_S)
                    except GatewayClientError:
                        pass
                raise
            finally:
                # the run's events precede its final res on the socket: let the printer
                # finish them, briefly (a subscriber that overflowed may never see the end)
                with trio.move_on_after(PRINTER_GRACE_S):
                    if not args.json:
                        await finished.wait()
                nursery.cancel_scope.cancel()
        return final


def _unreachable(exc: GatewayClientError) -> bool:
    """Only "nobody answered": no handshake error, no close frame (never auth/validation)."""
    return isinstance(exc, GatewayConnectError) and exc.error is None and exc.close_code is None


async def run_local(args: argparse.Namespace, paths: Paths, params: dict[str, Any]) -> Any:
    """The turn in this process: the gateway's agent service, our nursery, its transcript."""
    import os

    from ..agent.service import RunRequest
    from ..channels import agent_delivery
    from ..channels.agent_delivery import DeliveryRequest
    from ..config.load import load_file
    from ..config.settings import AuthSettings, Settings
    from ..protocol.codec import to_wire
    from ..rpc.agent import _prefixed, _start, final
    from ..runtime import Runtime

    if params.get("deliver"):
        raise GatewayError("--deliver needs the gateway (it owns the channels); drop --local")
    loaded = load_file(paths.config_path, os.environ)
    settings = Settings(
        loaded.config,
        paths,
        "loopback",
        "127.0.0.1",
        0,
        AuthSettings("none", None, None, "none"),
        loaded.exists,
    )
    rt = Runtime(settings)
    request = DeliveryRequest(
        to=params.get("to"),
        channel=params.get("channel"),
        account_id=params.get("accountId"),
        thread_id=params.get("threadId"),
        reply_to=params.get("replyTo"),
        reply_channel=params.get("replyChannel"),
        reply_account_id=params.get("replyAccountId"),
        deliver=False,
        best_effort=False,
    )
    try:
        route = await agent_delivery.plan(
            rt, request, params.get("sessionKey"), params.get("agentId")
        )
    except PeerError as exc:
        raise _prefixed(exc) from None
    async with trio.open_nursery() as nursery:
        rt.nursery = nursery
        run = _start(
            rt.agents,
            RunRequest(
                run_id=params["idempotencyKey"],
                message=params["message"],
                agent_id=params.get("agentId"),
                session_key=route.session_key,
                timeout_s=params.get("timeout"),
            ),
        )
        try:
            await run.done.wait()
        except BaseException:
            run.stop("aborted", "interrupted")
            with trio.CancelScope(shield=True), trio.move_on_after(ABORT_BUDGET_S):
                await run.done.wait()
            raise
    return to_wire(final(run))


def _print_error(
    args: argparse.Namespace,
    err: Console,
    code: str | None,
    message: str,
    details: Any,
    payload: Any,
) -> None:
    if args.json:
        error = {"code": code, "message": message, "details": details}
        print(
            json.dumps(
                {"ok": False, "error": error, "payload": payload},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        err.print(f"{code}: {message}", markup=False)


def agent_command(args: argparse.Namespace, paths: Paths, out: Console, err: Console) -> int:
    params = build_params(args, str(uuid.uuid4()))
    streamed: list[str] = []
    local = bool(getattr(args, "local", False))
    if not local:
        target = resolve_target(paths, url=args.url, token=args.token, password=args.password)
        try:
            payload = interrupt.run(run_once, args, target, params, streamed)
        except GatewayRpcError as exc:
            if streamed:
                sys.stdout.write("\n")
            _print_error(args, err, exc.code, exc.message, exc.details, exc.payload)
            return 1
        except GatewayClientError as exc:
            if streamed:
                sys.stdout.write("\n")
            if not _unreachable(exc):
                err.print(str(exc), markup=False)
                for line in where_we_looked(target, paths):
                    err.print(line, markup=False)
                return 1
            err.print(f"gateway unreachable ({exc}); running the agent locally", markup=False)
            local = True
    if local:
        try:
            payload = interrupt.run(run_local, args, paths, params)
        except (RpcError, PeerError) as exc:
            # the gateway's answer in the same shape: `INVALID_REQUEST: ...`, exit 1
            _print_error(args, err, str(exc.code), exc.message, exc.details, exc.payload)
            return 1
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    if not streamed:
        texts = [p.get("text", "") for p in (payload.get("result") or {}).get("payloads", [])]
        sys.stdout.write("\n\n".join(texts))
    sys.stdout.write("\n")
    sys.stdout.flush()
    out.print(AgentRunReport(payload))
    return 0
