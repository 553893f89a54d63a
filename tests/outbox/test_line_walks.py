"""The dispatcher's line walks, on each database: one pass delivers a whole (endpoint, case)
line in seq order (the head claimed with the rows behind it, each sent after the previous one's
delivery is committed); a failure stops the walk and releases the rest; and a release clears
only a lease the dispatcher still holds, never another dispatcher's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

from sqlalchemy import select

from outbox import endpoints
from outbox.dispatch import Claimed, DispatchConfig, Dispatcher, Outcome
from outbox.fanout import fan_out
from runtime.engine import Engine
from store.tables import DELIVERIES
from tests.support.actors import ADMIN, CONSUMER
from tests.support.builders import new_case
from tests.support.receivers import Behaviour, webhook_receiver


def _dispatcher(engine: Engine) -> Dispatcher:
    config = DispatchConfig(timeout_seconds=1.0, lease_seconds=30.0, schedule=(0, 5, 300))
    return Dispatcher(engine.cases, engine.notification_rules, config)


def _case_with_comments(engine: Engine, comments: int) -> str:
    case = engine.cases.file(actor=CONSUMER, new_case=new_case())
    for n in range(comments):
        engine.cases.execute(actor=CONSUMER, case_id=case.id, name="comment", data={"body": f"note {n}"})
    return case.id


def test_one_pass_walks_each_line_in_seq_order(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    with webhook_receiver() as receiver:
        endpoints.register(engine.db, ADMIN, url=receiver.url, now=engine.clock.now(), development=True)
        case_ids = [_case_with_comments(engine, 6) for _ in range(3)]
        dispatcher = _dispatcher(engine)
        try:
            delivered = dispatcher.run_once()
        finally:
            dispatcher.close()
        with engine.db.read() as session:
            rows = session.execute(select(DELIVERIES.c.case_id, DELIVERIES.c.seq, DELIVERIES.c.status)).all()
        assert delivered == len(rows) and {r.status for r in rows} == {"delivered"}
        got = receiver.delivered()
        for case_id in case_ids:
            seqs = [int(r.message_id.rsplit("_", 1)[1]) for r in got if f"_{case_id}_" in r.message_id]
            assert seqs == sorted({r.seq for r in rows if r.case_id == case_id})  # all, once, in order
        # Fewer claims than deliveries: the rows behind each head went with it.
        assert dispatcher.stats.rounds < delivered


def test_a_failure_stops_the_walk_and_releases_the_rest(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    with webhook_receiver(Behaviour(script=[(200, {}), (500, {})])) as receiver:
        endpoints.register(engine.db, ADMIN, url=receiver.url, now=engine.clock.now(), development=True)
        case_id = _case_with_comments(engine, 4)
        dispatcher = _dispatcher(engine)
        try:
            dispatcher.run_once()
        finally:
            dispatcher.close()
        with engine.db.read() as session:
            rows = session.execute(
                select(DELIVERIES.c.seq, DELIVERIES.c.status, DELIVERIES.c.lease_until, DELIVERIES.c.attempts)
                .where(DELIVERIES.c.case_id == case_id)
                .order_by(DELIVERIES.c.seq)
            ).all()
        # The first delivered, the second failed (retried later), nothing after it was sent.
        assert [r.status for r in rows] == ["delivered"] + ["pending"] * (len(rows) - 1)
        assert rows[1].attempts == 1
        assert all(r.lease_until is None for r in rows[1:])  # released, claimable again when due
        assert [r.message_id for r in receiver.received] == [
            f"evt_{case_id}_{rows[0].seq}",
            f"evt_{case_id}_{rows[1].seq}",
        ]


def test_a_release_leaves_another_dispatchers_lease_alone(outbox_engine: Callable[..., Engine]) -> None:
    engine = outbox_engine()
    endpoint, _ = endpoints.register(
        engine.db, ADMIN, url="http://127.0.0.1:9/hook", now=engine.clock.now(), development=True
    )
    case_id = _case_with_comments(engine, 1)
    fan_out(engine.db, engine.clock.now())
    now = engine.clock.now()
    with engine.db.read() as session:
        row = session.execute(
            select(DELIVERIES).where(DELIVERIES.c.case_id == case_id, DELIVERIES.c.target == endpoint.id).limit(1)
        ).one()
    mine, theirs = now + timedelta(seconds=10), now + timedelta(seconds=70)
    engine.db.run_write(
        lambda s: s.execute(DELIVERIES.update().where(DELIVERIES.c.pk == row.pk).values(lease_until=theirs))
    )
    item = Claimed(row.pk, "webhook", endpoint.id, case_id, row.seq, row.message_id, row.payload, 0, lease_until=mine)
    dispatcher = _dispatcher(engine)
    try:
        # This dispatcher's lease ran out and another claimed the row: its release changes nothing.
        engine.db.run_write(partial(dispatcher._record, outcomes=[Outcome(item, released=True)], now=now))
        with engine.db.read() as session:
            assert session.execute(select(DELIVERIES.c.lease_until).where(DELIVERIES.c.pk == row.pk)).scalar() == theirs
        # Its own lease it does release.
        engine.db.run_write(
            lambda s: s.execute(DELIVERIES.update().where(DELIVERIES.c.pk == row.pk).values(lease_until=mine))
        )
        engine.db.run_write(partial(dispatcher._record, outcomes=[Outcome(item, released=True)], now=now))
        with engine.db.read() as session:
            assert session.execute(select(DELIVERIES.c.lease_until).where(DELIVERIES.c.pk == row.pk)).scalar() is None
    finally:
        dispatcher.close()
