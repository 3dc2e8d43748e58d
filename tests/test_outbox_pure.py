"""The durable outbox without a gateway: policies, pacing, parts, targets, and the SQL on a
real database file (CHANNELS.md 6)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import cast

import attrs
import pytest

from gateway.channels import delivery
from gateway.channels.db import Database
from gateway.channels.outbox import store
from gateway.channels.outbox.model import (
    Media,
    NewRecord,
    Part,
    PartSpec,
    PartState,
    Payload,
    Record,
    Target,
)
from gateway.channels.outbox.pacing import TELEGRAM, Bucket, Pacer, Window
from gateway.channels.outbox.parts import plan_parts
from gateway.channels.outbox.policy import (
    AmbiguityPolicy,
    Outcome,
    SendFailure,
    after_failure,
    found_sending,
    retry_delay_ms,
)
from gateway.errors import InvalidRequest

NOW = 1_800_000_000_000
DAY = 86_400_000


def mid(_a: float, _b: float) -> float:
    return 1.0


def record(*parts: str, created: int = NOW, attempts: int = 0) -> Record:
    return Record(
        seq=1,
        id="r1",
        idempotency_key="k",
        source="send",
        channel="telegram",
        account_id="default",
        chat_key="telegram:default:42",
        target=Target("42"),
        payload=Payload("x"),
        mirror=None,
        state="pending",
        attempts=attempts,
        next_attempt_at=created,
        last_error=None,
        last_error_class=None,
        error_code=None,
        created_at=created,
        updated_at=created,
        sent_at=None,
        parts=tuple(Part("r1", i, "text", "t", cast(PartState, s)) for i, s in enumerate(parts)),
    )


# -- policy ------------------------------------------------------------------------------------


def test_retry_schedule_5s_25s_2m_10m_then_30m_with_jitter_and_retry_after() -> None:
    assert [retry_delay_ms(n, None, mid) for n in range(1, 8)] == [
        5_000,
        25_000,
        120_000,
        600_000,
        1_800_000,
        1_800_000,
        1_800_000,
    ]
    assert retry_delay_ms(1, None, lambda a, b: b) == 6_000  # x1.2
    assert retry_delay_ms(1, None, lambda a, b: a) == 4_000  # x0.8
    assert retry_delay_ms(1, 40.0, mid) == 40_000  # the platform's retry_after when longer
    assert retry_delay_ms(3, 40.0, mid) == 120_000


def _after(
    rec: Record, idx: int, failure: SendFailure, policy: AmbiguityPolicy = "resend"
) -> Outcome:
    part = rec.parts[idx]
    return after_failure(rec, part, failure, policy=policy, now_ms=NOW, max_age_ms=DAY, uniform=mid)


def test_a_permanent_failure_fails_the_record_or_partially_after_a_sent_part() -> None:
    first = _after(
        record("pending", "pending"), 0, SendFailure("permanent", "chat not found", status=400)
    )
    assert (first.part_state, first.record_state, first.error_code) == (
        "failed",
        "failed",
        "INVALID_REQUEST",
    )
    second = _after(
        record("sent", "pending", "pending"), 1, SendFailure("permanent", "blocked", status=403)
    )
    assert second.record_state == "partial_failed"
    assert second.error_code == "UNAVAILABLE"


def test_transient_failures_retry_on_the_schedule_until_the_record_is_too_old() -> None:
    outcome = _after(record("pending", attempts=2), 0, SendFailure("network", "refused"))
    assert outcome.record_state == "pending"
    assert outcome.next_attempt_at == NOW + 120_000
    late = _after(record("pending", created=NOW - DAY), 0, SendFailure("network", "refused"))
    assert late.record_state == "expired"
    auth = _after(record("pending"), 0, SendFailure("auth", "401"))
    assert auth.record_state == "pending"


def test_ambiguous_is_resent_once_under_resend_and_never_under_drop() -> None:
    rec = record("pending")
    resend = _after(rec, 0, SendFailure("ambiguous", "reset"))
    assert (resend.part_state, resend.record_state, resend.ambiguous) == (
        "pending",
        "pending",
        True,
    )
    again = attrs.evolve(rec, parts=(Part("r1", 0, "text", "t", "pending", ambiguous=1),))
    second = _after(again, 0, SendFailure("ambiguous", "reset"))
    assert second.record_state == "failed"  # no third copy
    drop = _after(rec, 0, SendFailure("ambiguous", "reset"), policy="drop")
    assert (drop.record_state, drop.error_class) == ("failed", "ambiguous")


def test_a_part_found_sending_after_a_crash_waits_out_the_grace_then_follows_the_policy() -> None:
    part = Part("r", 0, "text", "t", "sending")
    assert found_sending(part, policy="resend", grace_left_ms=5_000) == "wait"
    assert found_sending(part, policy="resend", grace_left_ms=0) == "resend"
    assert found_sending(part, policy="drop", grace_left_ms=0) == "drop"
    resent = Part("r", 0, "text", "t", "sending", ambiguous=1)
    assert found_sending(resent, policy="resend", grace_left_ms=0) == "drop"


# -- pacing ------------------------------------------------------------------------------------


def test_telegram_pacing_a_chat_bursts_three_then_one_a_second() -> None:
    pacer = Pacer(TELEGRAM)
    t = 100.0
    for _ in range(3):
        assert pacer.delay("c", False, t) == 0
        pacer.sent("c", False, t)
    assert pacer.delay("c", False, t) == pytest.approx(1.0)
    assert pacer.delay("other", False, t) == 0  # chats are independent
    pacer.sent("c", False, t + 1.0)
    assert pacer.delay("c", False, t + 1.0) == pytest.approx(1.0)


def test_telegram_pacing_a_group_takes_twenty_a_minute() -> None:
    window = Window(20, 60.0)
    for i in range(20):
        assert window.delay(float(i)) == 0
        window.take(float(i))
    assert window.delay(20.0) == pytest.approx(40.0)
    assert window.delay(60.5) == 0  # the first one left the window


def test_a_bucket_refills_at_its_rate() -> None:
    bucket = Bucket(30.0, 30)
    for _ in range(30):
        bucket.take(0.0)
    assert bucket.delay(0.0) == pytest.approx(1 / 30)
    assert bucket.delay(1.0) == 0


# -- parts -------------------------------------------------------------------------------------


def test_long_text_becomes_ordered_chunks_within_the_limit() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 300 for i in range(40))
    parts = plan_parts(Payload(text), chunk_limit=4000)
    assert len(parts) >= 3
    assert all(p.kind == "text" and len(p.body) <= 4000 for p in parts)
    assert "".join(p.body for p in parts).replace("\n", "") == text.replace("\n", "")


def test_media_carries_a_short_text_as_caption_and_a_long_one_follows() -> None:
    short = plan_parts(
        Payload("look", (Media(url="https://x/a.png"), Media(url="https://x/b.png"))),
        chunk_limit=4000,
    )
    assert [p.kind for p in short] == ["media", "media"]
    assert json.loads(short[0].body)["caption"] == "look"
    assert "caption" not in json.loads(short[1].body)
    long = plan_parts(Payload("y" * 2000, (Media(url="https://x/a.png"),)), chunk_limit=4000)
    assert [p.kind for p in long] == ["media", "text"]


# -- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "thread", "to", "expected_thread"),
    [
        ("123456", None, "123456", None),
        ("telegram:-1001234567890", None, "-1001234567890", None),
        ("tg:42", "7", "42", "7"),
        ("@my_channel", None, "@my_channel", None),
        ("-1001234567890:topic:3", None, "-1001234567890", "3"),
    ],
)
def test_telegram_targets(
    raw: str, thread: str | None, to: str, expected_thread: str | None
) -> None:
    target = delivery.parse_target("telegram", raw, thread)
    assert (target.to, target.thread_id) == (to, expected_thread)


@pytest.mark.parametrize("raw", ["bob", "12ab", "@x", "", "123:topic:x"])
def test_bad_telegram_targets_are_refused_with_the_expected_forms(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="telegram"):
        delivery.parse_target("telegram", raw)


def test_whatsapp_targets_are_e164() -> None:
    assert delivery.parse_target("whatsapp", "+1 555 123-4567").to == "15551234567"
    assert delivery.parse_target("whatsapp", "whatsapp:+4915112345678").to == "4915112345678"
    assert delivery.parse_target("whatsapp", "15551234567@s.whatsapp.net").to == "15551234567"
    with pytest.raises(InvalidRequest, match=r"E\.164"):
        delivery.parse_target("whatsapp", "@bob")


# -- the tables --------------------------------------------------------------------------------


def new(key: str, to: str = "42", parts: int = 1) -> NewRecord:
    return NewRecord(
        key,
        "send",
        "telegram",
        "default",
        Target(to),
        Payload("t"),
        tuple(PartSpec("text", f"p{i}") for i in range(parts)),
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open_sync(tmp_path)
    yield database
    database.close_sync()


def test_one_record_per_key_and_fifo_heads_per_chat(db: Database) -> None:
    first, created = db.transaction_sync(lambda c: store.insert(c, new("a", parts=3), NOW))
    assert created
    assert [p.state for p in first.parts] == ["pending"] * 3
    again, created = db.transaction_sync(lambda c: store.insert(c, new("a"), NOW + 5))
    assert not created
    assert (again.id, len(again.parts)) == (first.id, 3)
    db.transaction_sync(lambda c: store.insert(c, new("b"), NOW))
    db.transaction_sync(lambda c: store.insert(c, new("c", to="7"), NOW))
    heads = dict(db.run_sync(lambda c: store.heads(c, "telegram", "default")))
    assert set(heads) == {"telegram:default:42", "telegram:default:7"}
    head = db.run_sync(lambda c: store.head_of(c, "telegram:default:42"))
    assert head is not None
    assert head.idempotency_key == "a"  # b waits behind a


def test_parts_complete_a_record_and_a_failure_cancels_the_rest(db: Database) -> None:
    rec, _ = db.transaction_sync(lambda c: store.insert(c, new("a", parts=3), NOW))
    db.transaction_sync(lambda c: store.part_sending(c, rec.id, 0, NOW))
    assert not db.transaction_sync(lambda c: store.part_sent(c, rec.id, 0, "11", NOW))
    db.transaction_sync(lambda c: store.part_sending(c, rec.id, 1, NOW))
    applied = db.transaction_sync(
        lambda c: store.part_failed(
            c,
            rec.id,
            1,
            part_state="failed",
            record_state="partial_failed",
            next_attempt_at=NOW,
            error="Forbidden: bot was blocked by the user",
            error_class="permanent",
            error_code="UNAVAILABLE",
            ambiguous=False,
            count_attempt=True,
            now_ms=NOW,
        )
    )
    assert applied
    done = db.run_sync(lambda c: store.get(c, rec.id))
    assert done is not None
    assert (done.state, done.message_id) == ("partial_failed", "11")
    assert [p.state for p in done.parts] == ["sent", "failed", "cancelled"]
    other, _ = db.transaction_sync(lambda c: store.insert(c, new("b", parts=2), NOW))
    for i in range(2):
        db.transaction_sync(partial(store.part_sending, record_id=other.id, idx=i, now_ms=NOW))
    assert not db.transaction_sync(lambda c: store.part_sent(c, other.id, 0, "1", NOW))
    assert db.transaction_sync(lambda c: store.part_sent(c, other.id, 1, "2", NOW))
    stats = db.run_sync(store.stats)[("telegram", "default")]
    assert (stats.pending, stats.failed) == (0, 1)


def test_statuses_only_move_forward_and_settle_a_part_still_sending(db: Database) -> None:
    rec, _ = db.transaction_sync(lambda c: store.insert(c, new("a"), NOW))
    db.transaction_sync(lambda c: store.part_sending(c, rec.id, 0, NOW))

    def status(
        value: str, platform_id: str = "wamid.1", opaque: str | None = None
    ) -> store.StatusUpdate:
        return db.transaction_sync(
            lambda c: store.apply_status(
                c,
                opaque=opaque,
                platform_id=platform_id,
                status=value,
                error=None,
                error_class="permanent",
                error_code="UNAVAILABLE",
                now_ms=NOW,
            )
        )

    settled = status("delivered", opaque=f"{rec.id}:0")
    assert (settled.settled, settled.completed) == (True, True)
    status("read")
    status("delivered")  # late: ignored
    fresh = db.run_sync(lambda c: store.get(c, rec.id))
    assert fresh is not None
    part = fresh.parts[0]
    assert (part.state, part.delivery_state, part.platform_message_id) == (
        "sent",
        "read",
        "wamid.1",
    )
    assert status("read", platform_id="wamid.unknown").record_id is None


def test_the_open_records_of_an_account_are_bounded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_OPEN_PER_ACCOUNT", 3)
    for i in range(3):
        db.transaction_sync(partial(store.insert, new=new(f"k{i}"), now_ms=NOW))
    with pytest.raises(store.OutboxFull):
        db.transaction_sync(lambda c: store.insert(c, new("k3"), NOW))
    _, created = db.transaction_sync(lambda c: store.insert(c, new("k0"), NOW))
    assert created is False  # dedupe first, then the bound


def test_prune_removes_final_records_after_seven_days_and_beyond_the_row_cap(db: Database) -> None:
    ids = []
    for i in range(5):
        rec, _ = db.transaction_sync(
            partial(store.insert, new=new(f"k{i}", to=str(i)), now_ms=NOW - 8 * DAY + i)
        )
        db.transaction_sync(
            partial(store.part_sending, record_id=rec.id, idx=0, now_ms=rec.created_at)
        )
        db.transaction_sync(
            partial(store.part_sent, record_id=rec.id, idx=0, message_id="1", now_ms=rec.created_at)
        )
        ids.append(rec.id)
    open_one, _ = db.transaction_sync(lambda c: store.insert(c, new("open", to="9"), NOW - 9 * DAY))
    recent = []
    for i in range(4):
        rec, _ = db.transaction_sync(
            partial(store.insert, new=new(f"r{i}", to=f"r{i}"), now_ms=NOW)
        )
        db.transaction_sync(
            partial(store.part_sent, record_id=rec.id, idx=0, message_id="1", now_ms=NOW - 10 + i)
        )
        recent.append(rec.id)
    deleted = db.transaction_sync(lambda c: store.prune(c, NOW, max_rows=2))
    assert set(deleted) == set(ids) | set(recent[:2])
    assert db.run_sync(lambda c: store.get(c, open_one.id)) is not None  # open: never pruned
