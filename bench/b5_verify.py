"""B5: chain verification versus ``hashlib.sha256`` over the same bytes.

Over the B4 histories (one long case, many short ones). Three figures:

- the chain check itself (:func:`audit.chains.first_chain_break`: every seq, link, hash
  and the case id and seq inside each body) over the rows as the database returned
  them, versus sha256 over exactly the bytes the chain covers (previous digest ||
  canonical body, per event), prepared in memory beforehand. This is the project's
  "chain verification >= 0.4 x hashlib" (docs/architecture.md, Performance targets) and carries the target.
- chain-only verification from the database (``verify_database(replay=False)``: paged
  reads, checkpointed heads, the chain check) versus reading the same two columns with
  the same driver and hashing them: both pay the read.
- full ``verify_case`` (chain, replay through the pinned workflow, comparison with the
  stored projection): reported for information; its cost is the fold of B4.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import select

from audit.chains import CHAIN_COLUMNS, first_chain_break, verify_case
from audit.verify import verify_database
from bench.common import Outcome, Row, fmt_rate, log, make_service, median
from bench.context import Context
from bench.history import loaded
from cases.service import CaseService
from store.tables import EVENTS

NAME = "B5"
TARGET = 0.4


def full_seconds(service: CaseService, case_ids: list[str]) -> float:
    start = time.perf_counter()
    with service.db.read() as session:
        for case_id in case_ids:
            damage = verify_case(session, service.registry, case_id)
            if damage:
                raise AssertionError(f"verification found damage: {damage[0]}")
    return time.perf_counter() - start


def chain_db_seconds(service: CaseService) -> float:
    start = time.perf_counter()
    report = verify_database(service.db, service.registry, replay=False, checkpoints=False)
    if not report.intact:
        raise AssertionError(f"chain-only verification found damage: {report.damages[:1]}")
    return time.perf_counter() - start


def read_and_hash_seconds(service: CaseService) -> float:
    """The raw baseline for the database figure: the same rows, the same driver, sha256 each."""
    start = time.perf_counter()
    sha256 = hashlib.sha256
    with service.db.read() as session:
        for prev, body in session.execute(select(EVENTS.c.prev_hash, EVENTS.c.body)):
            sha256(bytes.fromhex(prev) + body.encode("utf-8")).digest()
    return time.perf_counter() - start


def run(ctx: Context) -> Outcome:
    out = Outcome()
    data = loaded(ctx)
    h = data.histories
    case_ids = [h.long_id, *h.short_ids]
    service = make_service(data.url)
    try:
        with service.db.read() as session:
            chains = {
                case_id: [
                    tuple(r)
                    for r in session.execute(
                        select(*CHAIN_COLUMNS).where(EVENTS.c.case_id == case_id).order_by(EVENTS.c.seq)
                    )
                ]
                for case_id in case_ids
            }
        chunks = [bytes.fromhex(prev) + body.encode("utf-8") for rows in chains.values() for _s, body, prev, _h in rows]
        size = sum(len(c) for c in chunks)
        events = len(chunks)

        def hashlib_seconds() -> float:
            sha256 = hashlib.sha256
            start = time.perf_counter()
            for chunk in chunks:
                sha256(chunk).digest()
            return time.perf_counter() - start

        def chain_seconds() -> float:
            start = time.perf_counter()
            for case_id, rows in chains.items():
                if first_chain_break(case_id, rows) is not None:
                    raise AssertionError(f"the chain of {case_id} does not hold")
            return time.perf_counter() - start

        for _ in range(ctx.warmups):
            hashlib_seconds()
            chain_seconds()
            chain_db_seconds(service)
            full_seconds(service, case_ids)
        raw, chain, raw_db, chain_db, full = [], [], [], [], []
        for index in range(ctx.runs):
            raw.append(hashlib_seconds())
            chain.append(chain_seconds())
            raw_db.append(read_and_hash_seconds(service))
            chain_db.append(chain_db_seconds(service))
            full.append(full_seconds(service, case_ids))
            log(
                f"B5: run {index + 1}/{ctx.runs}: chain {chain[-1] * 1000:.1f} ms, sha256 {raw[-1] * 1000:.1f} ms, "
                f"from the db {chain_db[-1] * 1000:.0f} ms vs {raw_db[-1] * 1000:.0f} ms, "
                f"full {full[-1] * 1000:.0f} ms"
            )
    finally:
        service.db.dispose()
    mb = size / 1e6

    def rate(seconds: float) -> str:
        return f"{fmt_rate(mb / seconds, 'MB/s')} ({fmt_rate(events / seconds, 'ev/s')})"

    r, c, rd, cd, f = median(raw), median(chain), median(raw_db), median(chain_db), median(full)
    label = f"{events:,} events, {mb:.1f} MB"
    out.rows.append(
        Row(
            f"B5 chain check ({label}) vs hashlib.sha256 over the same bytes",
            rate(r),
            rate(c),
            r / c,
            f">= {TARGET}",
            r / c >= TARGET,
        )
    )
    out.rows.append(
        Row(
            "B5 chain-only verify_database vs reading the same rows + sha256",
            rate(rd),
            rate(cd),
            rd / cd,
            f">= {TARGET}",
            rd / cd >= TARGET,
        )
    )
    out.rows.append(
        Row("B5 full verify_case (chain + replay + projection) vs hashlib.sha256", rate(r), rate(f), r / f, "", None)
    )
    out.notes.append(
        "B5: the chain check reads no JSON: it finds the body's top-level case id and seq by position in the "
        "canonical form (audit.chains.first_chain_break). Full verification also parses every body and folds it "
        f"through the pinned workflow ({f * 1e6 / events:.0f} µs per event, the replay cost of B4)."
    )
    return out
