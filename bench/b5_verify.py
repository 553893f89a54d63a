"""B5: chain verification (``cases.audit.verify_case``) versus ``hashlib.sha256`` over the same bytes.

Over the B4 histories (one long case, many short ones): ``verify_case`` reads each
case's events, checks every link and hash, re-parses and replays the events and
compares the result with the stored projection. The baseline hashes exactly the bytes
the chain covers (previous hash || canonical body, per event) from memory. Reported
in MB/s and events/s; also the read alone and the hash-link check alone, to show where
the time goes.
"""

from __future__ import annotations

import hashlib
import inspect
import time

from sqlalchemy import select

from bench.common import Outcome, Row, fmt_rate, log, make_service, median
from bench.context import Context
from bench.history import loaded
from cases.audit import _digest, _rows, check_case_rows, verify_case
from cases.projection import CASES
from cases.service import EVENTS, CaseService

NAME = "B5"
TARGET = 0.4


def verify_seconds(service: CaseService, case_ids: list[str]) -> float:
    start = time.perf_counter()
    with service.db.read() as session:
        for case_id in case_ids:
            damage = verify_case(session, service.registry, case_id)
            if damage:
                raise AssertionError(f"verification found damage: {damage[0]}")
    return time.perf_counter() - start


def chain_seconds(service: CaseService, case_ids: list[str]) -> float:
    """``verify_case`` without the replay (``check_case_rows(..., replay=False)``), where the engine has it."""
    start = time.perf_counter()
    with service.db.read() as session:
        for case_id in case_ids:
            rows = _rows(session, case_id)
            case_row = session.execute(
                select(CASES.c.version, CASES.c.head_hash, CASES.c.snapshot, CASES.c.state).where(CASES.c.id == case_id)
            ).first()
            assert case_row is not None
            damage = check_case_rows(session, service.registry, case_id, rows, tuple(case_row), replay=False)
            if damage is not None:
                raise AssertionError(f"chain check found damage: {damage}")
    return time.perf_counter() - start


def read_seconds(service: CaseService, case_ids: list[str]) -> float:
    start = time.perf_counter()
    with service.db.read() as session:
        for case_id in case_ids:
            _rows(session, case_id)
    return time.perf_counter() - start


def run(ctx: Context) -> Outcome:
    out = Outcome()
    data = loaded(ctx)
    h = data.histories
    case_ids = [h.long_id, *h.short_ids]
    service = make_service(data.url)
    try:
        with service.db.read() as session:
            stored = session.execute(select(EVENTS.c.prev_hash, EVENTS.c.body)).all()
        chunks = [bytes.fromhex(prev) + body.encode("utf-8") for prev, body in stored]
        pairs = [(prev, body) for prev, body in stored]
        size = sum(len(c) for c in chunks)
        events = len(chunks)

        def hashlib_seconds() -> float:
            start = time.perf_counter()
            for chunk in chunks:
                hashlib.sha256(chunk).digest()
            return time.perf_counter() - start

        def links_seconds() -> float:
            start = time.perf_counter()
            for prev, body in pairs:
                _digest(prev, body)
            return time.perf_counter() - start

        for _ in range(ctx.warmups):
            verify_seconds(service, case_ids)
            hashlib_seconds()
        chain_only = "replay" in inspect.signature(check_case_rows).parameters
        verify, raw, read, links, chain = [], [], [], [], []
        for index in range(ctx.runs):
            raw.append(hashlib_seconds())
            verify.append(verify_seconds(service, case_ids))
            read.append(read_seconds(service, case_ids))
            links.append(links_seconds())
            if chain_only:
                chain.append(chain_seconds(service, case_ids))
            log(f"B5: run {index + 1}/{ctx.runs}: verify {verify[-1] * 1000:.0f} ms, sha256 {raw[-1] * 1000:.1f} ms")
    finally:
        service.db.dispose()
    v, r = median(verify), median(raw)
    mb = size / 1e6
    out.rows.append(
        Row(
            f"B5 verify_case over {events:,} events ({mb:.1f} MB) vs hashlib.sha256",
            f"{fmt_rate(mb / r, 'MB/s')} ({fmt_rate(events / r, 'ev/s')})",
            f"{fmt_rate(mb / v, 'MB/s')} ({fmt_rate(events / v, 'ev/s')})",
            r / v,
            f">= {TARGET}",
            r / v >= TARGET,
        )
    )
    if chain:
        c = median(chain)
        out.rows.append(
            Row(
                "B5 chain only (check_case_rows(replay=False)) vs hashlib.sha256",
                f"{fmt_rate(mb / r, 'MB/s')} ({fmt_rate(events / r, 'ev/s')})",
                f"{fmt_rate(mb / c, 'MB/s')} ({fmt_rate(events / c, 'ev/s')})",
                r / c,
                f">= {TARGET}",
                r / c >= TARGET,
            )
        )
    out.notes.append(
        f"B5: of the verification's {v * 1000:.0f} ms, reading the rows alone takes {median(read) * 1000:.0f} ms and "
        f"the hash-link check alone (audit._digest per event, from memory) {median(links) * 1000:.0f} ms; the rest "
        "is parsing the bodies, rebuilding and folding the events and comparing the projection."
    )
    return out
