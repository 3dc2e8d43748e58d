"""Where an ``agent`` run's reply is delivered, and delivering it (CHANNELS.md 5.3).

Target precedence: an explicit ``to`` (+ ``channel``, ``accountId``, ``threadId``) >
``replyTo`` (+ ``replyChannel``, ``replyAccountId``) > the session's ``lastRoute``. ``to``
without a ``sessionKey`` also picks the session: the one a message from that peer would
land in under ``session.dmScope``. ``deliver:true`` with no route is ``INVALID_REQUEST``
unless ``bestEffortDeliver`` (then the reply simply stays in the gateway).

The delivery itself is a task of the run (``Runtime.nursery``), not of the request: a
caller that goes away after ``accepted`` still gets its reply delivered, and a retried
``agent`` with the same key joins the same run and the same outbox records
(``agent:<idempotencyKey>:<n>``), so nothing is sent twice.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import attrs

from ..agent.keys import session_key as make_session_key
from ..errors import GatewayError, InvalidRequest
from . import delivery
from .delivery import Destination
from .outbox.model import Source, Target
from .replies import DeliveryStatus, deliver_payloads
from .routing import PeerKind, Route, select_agent, session_rest

if TYPE_CHECKING:
    from ..agent.run import Run
    from ..runtime import Runtime

log = logging.getLogger("gateway.outbox")

ROUTE_HINTS = ("last",)


@attrs.frozen
class DeliveryRequest:
    """The routing fields of an ``agent`` request (or a hook)."""

    to: str | None = None
    channel: str | None = None
    account_id: str | None = None
    thread_id: str | None = None
    reply_to: str | None = None
    reply_channel: str | None = None
    reply_account_id: str | None = None
    deliver: bool = False
    best_effort: bool = False


@attrs.frozen
class DeliveryPlan:
    session_key: str | None  # the session to run in, when ``to`` chose it
    destination: Destination | None  # where the reply goes (None: nowhere)
    explicit: bool = False  # named by the request (it becomes the session's lastRoute)


def _channel_hint(raw: str | None) -> str | None:
    """A channel named in the request: known, ``last`` (= none given) or refused."""
    if raw is None or not raw.strip():
        return None
    name = raw.strip().lower()
    if name in ROUTE_HINTS:
        return None
    if name not in (*delivery.SUPPORTED, *delivery.INTERNAL):
        raise InvalidRequest(f'unknown channel "{raw}" (known: telegram, whatsapp, webchat, last)')
    return name


def peer_session(rt: Runtime, destination: Destination, agent_id: str | None) -> tuple[str, str]:
    """``(agent id, session key)`` a message from the destination's peer would use."""
    config = rt.settings.config
    peer, group = delivery.peer_of(destination)
    kind: PeerKind = "group" if group else "direct"
    agent = agent_id or select_agent(
        config,
        channel=destination.channel,
        account_id=destination.account_id,
        peer_kind=kind,
        peer_id=peer,
    )
    thread = destination.target.thread_id
    rest = session_rest(
        config,
        channel=destination.channel,
        account_id=destination.account_id,
        peer_kind=kind,
        peer_id=peer,
        thread_id=int(thread) if group and thread and thread.isdigit() else None,
    )
    return agent, make_session_key(agent, rest)


async def plan(
    rt: Runtime, request: DeliveryRequest, session_key: str | None, agent_id: str | None
) -> DeliveryPlan:
    """Resolve the request's route. Raises ``INVALID_REQUEST`` / ``NOT_LINKED`` when
    ``deliver`` is asked for and cannot be honoured (unless ``bestEffortDeliver``)."""
    mgr = rt.channels
    channel = _channel_hint(request.channel)
    reply_channel = _channel_hint(request.reply_channel)
    wanted = request.deliver
    session = session_key
    destination: Destination | None = None
    explicit = False
    try:
        if request.to and request.to.strip():
            if channel in delivery.INTERNAL:
                raise InvalidRequest(f"channel {channel} is internal: it takes no to target")
            destination = delivery.resolve(
                mgr,
                channel,
                request.account_id,
                request.to,
                thread_id=request.thread_id,
                check=False,
            )
            explicit = True
            if session is None:
                _, session = peer_session(rt, destination, agent_id)
        elif request.reply_to and request.reply_to.strip():
            destination = delivery.resolve(
                mgr,
                reply_channel or channel,
                request.reply_account_id or request.account_id,
                request.reply_to,
                thread_id=request.thread_id,
                check=False,
            )
            explicit = True
    except GatewayError as exc:
        if not (wanted and request.best_effort):
            raise
        log.info("agent delivery skipped (bestEffortDeliver): %s", exc.message)
        destination = None
    if not wanted:
        return DeliveryPlan(session, None, explicit)
    if destination is None and channel not in delivery.INTERNAL:
        destination = await last_route(rt, session, agent_id)
    if destination is None:
        if request.best_effort:
            return DeliveryPlan(session, None, explicit)
        raise InvalidRequest(
            "deliver needs a route: pass to (and channel), or talk to this session through "
            "a channel first (bestEffortDeliver skips delivery instead)"
        )
    slot = mgr.slots.get((destination.channel, destination.account_id))
    try:
        if slot is None:
            raise InvalidRequest(
                f"{destination.channel}:{destination.account_id} is not configured"
            )
        delivery.check_linked(slot)
    except GatewayError as exc:
        if not request.best_effort:
            raise
        log.info("agent delivery skipped (bestEffortDeliver): %s", exc.message)
        return DeliveryPlan(session, None, explicit)
    return DeliveryPlan(session, destination, explicit)


async def last_route(
    rt: Runtime, session_key: str | None, agent_id: str | None
) -> Destination | None:
    service = rt.channels.service
    if service is None:
        return None
    try:
        spec, rest = rt.agents.resolve(agent_id, session_key)
    except GatewayError:
        return None
    route = await service.last_route(make_session_key(spec.id, rest))
    if route is None or (route.channel, route.account_id) not in rt.channels.slots:
        return None
    return Destination(route.channel, route.account_id, Target(route.to, route.thread_id))


async def deliver_when_done(
    rt: Runtime,
    run: Run,
    destination: Destination,
    *,
    source: Source = "agent",
    key_prefix: str | None = None,
    remember_route: bool = False,
) -> None:
    """A task of the run: once it answered, its payloads go out through the outbox;
    ``run.delivery_status`` says how that went, ``run.delivered`` fires."""
    try:
        await run.done.wait()
        if run.status != "ok":
            return
        if remember_route and rt.channels.service is not None:
            target = destination.target
            await rt.channels.service.record_route(
                run.session_key,
                Route(destination.channel, destination.account_id, target.to, target.thread_id),
            )
        status: DeliveryStatus = await deliver_payloads(
            rt, destination, key_prefix or f"agent:{run.run_id}", run.payloads, source
        )
        run.delivery_status = status
    except Exception:
        log.exception("run %s: delivery failed", run.run_id)
        run.delivery_status = "failed"
    finally:
        run.delivered.set()


def start_delivery(
    rt: Runtime,
    run: Run,
    destination: Destination,
    *,
    source: Source = "agent",
    key_prefix: str | None = None,
    remember_route: bool = False,
) -> None:
    """Deliver ``run``'s reply once it ends (at most one delivery task per run)."""
    if run.delivery_started or rt.nursery is None:
        return
    run.delivery_started = True
    rt.nursery.start_soon(
        partial(
            deliver_when_done,
            rt,
            run,
            destination,
            source=source,
            key_prefix=key_prefix,
            remember_route=remember_route,
        ),
        name=f"deliver {run.run_id}",
    )
