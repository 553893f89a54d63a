"""The outbox under faults, on each database: 1,000 case events written while two dispatcher
processes (`disputes worker --role dispatcher`) deliver them to a receiver on 127.0.0.1 that
fails at random (500s, answers later than the sender waits, reset connections), and the
dispatchers are killed with SIGKILL several times and started again.

Afterwards: every event was delivered at least once; every message that arrived verifies with
the independent ``standardwebhooks`` package; all copies of an event carry one ``webhook-id``
and the same body; and per (endpoint, case) the receiver saw the events in seq order (a
re-delivery repeats the last event seen, never an older one after a newer).
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from bench.cluster import stamp_head, start_dispatcher
from outbox import endpoints
from runtime.engine import Engine
from store.tables import DELIVERIES, EVENTS, OUTBOX
from tests.support.actors import ADMIN, CONSUMER
from tests.support.builders import new_case
from tests.support.receivers import Behaviour, webhook_receiver

CASES = 100
EVENTS_PER_CASE = 10  # filed, the assignment clock, 8 comments: 1,000 events
KILLS = 5
DISPATCHERS = 2
DISPATCHER_SETTINGS = {
    "DISPUTES_WEBHOOK_TIMEOUT_SECONDS": "0.3",
    "DISPUTES_DELIVERY_LEASE_SECONDS": "2",
    # The specification's schedule shrunk (ten attempts), so a run fits in a test.
    "DISPUTES_WEBHOOK_RETRY_SCHEDULE": "0,0.05,0.1,0.2,0.3,0.5,0.5,0.8,1,1,1,1,1,1,1,1,1,1,1,1",
    "DISPUTES_DISPATCHER_INTERVAL_SECONDS": "0.05",
    "DISPUTES_DISPATCHER_BATCH": "50",
}


def _settled(engine: Engine) -> bool:
    with engine.db.read() as session:
        unfanned = session.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.fanned_out.is_(False))
        ).scalar_one()
        pending = session.execute(
            select(func.count()).select_from(DELIVERIES).where(DELIVERIES.c.status != "delivered")
        ).scalar_one()
    return int(unfanned) == 0 and int(pending) == 0


def test_every_event_arrives_signed_and_in_order_despite_faults_and_kills(
    outbox_engine: Callable[..., Engine], db_url: str, tmp_path: Path
) -> None:
    engine = outbox_engine()
    stamp_head(db_url)
    rng = random.Random(2121)
    log = tmp_path / "dispatchers.log"
    behaviour = Behaviour(fail_rate=0.2, hang_seconds=0.5)
    with webhook_receiver(behaviour) as receiver:
        endpoint, secret = endpoints.register(
            engine.db, ADMIN, url=receiver.url, now=engine.clock.now(), development=True
        )
        workers = [start_dispatcher(db_url, log, DISPATCHER_SETTINGS) for _ in range(DISPATCHERS)]
        kills = 0
        try:
            case_ids = []
            # Write while the dispatchers work; kill one of them every so often.
            next_kill = time.monotonic() + 1.5
            for number in range(CASES):
                case = engine.cases.file(actor=CONSUMER, new_case=new_case(order_ref=f"ORD-{number}"))
                case_ids.append(case.id)
                for n in range(EVENTS_PER_CASE - case.version):
                    engine.cases.execute(actor=CONSUMER, case_id=case.id, name="comment", data={"body": f"note {n}"})
                if time.monotonic() >= next_kill and kills < KILLS:
                    victim = rng.randrange(DISPATCHERS)
                    workers[victim].send_signal(signal.SIGKILL)
                    workers[victim].wait()
                    workers[victim] = start_dispatcher(db_url, log, DISPATCHER_SETTINGS)
                    kills += 1
                    next_kill = time.monotonic() + rng.uniform(0.8, 1.6)
            while kills < KILLS:  # the rest of the kills while the backlog drains
                time.sleep(rng.uniform(0.8, 1.6))
                victim = rng.randrange(DISPATCHERS)
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start_dispatcher(db_url, log, DISPATCHER_SETTINGS)
                kills += 1
            deadline = time.monotonic() + 60
            while not _settled(engine):
                assert time.monotonic() < deadline, "the outbox did not drain: " + log.read_text()[-2000:]
                assert all(w.poll() is None for w in workers), log.read_text()[-2000:]
                time.sleep(0.25)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGKILL)
                worker.wait()
        received = list(receiver.received)

    with engine.db.read() as session:
        written = {(r.case_id, r.seq) for r in session.execute(select(EVENTS.c.case_id, EVENTS.c.seq)).all()}
    assert len(written) == CASES * EVENTS_PER_CASE
    assert kills == KILLS

    # Every event delivered (a 2xx came back) at least once.
    delivered = {r.message_id for r in received if r.answered is not None and 200 <= r.answered < 300}
    assert delivered == {f"evt_{case_id}_{seq}" for case_id, seq in written}

    # Every message that arrived verifies; copies of one event share its webhook-id and body.
    verifier = Webhook(secret)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    ids_of_event: dict[tuple[str, int], set[str]] = defaultdict(set)
    for record in received:
        verifier.verify(record.body, record.headers)
        bodies[record.message_id].add(record.body)
        data = json.loads(record.body)["data"]
        ids_of_event[(data["case_id"], data["seq"])].add(record.message_id)
    assert all(len(b) == 1 for b in bodies.values())
    assert all(len(ids) == 1 for ids in ids_of_event.values())
    assert len(received) > len(delivered)  # the faults did cause re-deliveries

    # Per (endpoint, case), in seq order: never an older event after a newer one.
    seen: dict[str, list[int]] = defaultdict(list)
    for record in sorted(received, key=lambda r: r.at):
        data = json.loads(record.body)["data"]
        seen[data["case_id"]].append(data["seq"])
    for case_id, seqs in seen.items():
        assert seqs == sorted(seqs), f"{endpoint.id} saw {case_id} out of order: {seqs}"
