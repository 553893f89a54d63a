"""B4: replay of one ~10,000-event case versus 100 replays of ~100-event cases.

Both are made by the engine with the same command mix (bench/history.py) and replayed
with ``audit.replay.replay`` (read the events, rebuild them, fold them through the
pinned workflow), each replay in its own read transaction. The ratio compares the time
per event of the long case with that of the short ones, run by run, and takes the
median of those; flat (<= 1.15) is the target.
"""

from __future__ import annotations

import time

from audit.replay import replay
from bench.common import CONSUMER, Outcome, Row, fmt_ms, fmt_rate, log, make_service, median
from bench.context import Context
from bench.history import loaded
from cases.service import CaseService

NAME = "B4"
TARGET = 1.15
# A pair of replays takes under a second, and on the shared 2-core machine single runs of
# the same replay spread 390-535 ms: three times the harness's runs keep the medians
# (and so a ratio judged against 1.15) from resting on two or three lucky samples.
RUNS_PER_RUN = 3


def replay_seconds(service: CaseService, case_ids: list[str]) -> float:
    start = time.perf_counter()
    for case_id in case_ids:
        with service.db.read() as session:
            replay(session, service.registry, case_id)
    return time.perf_counter() - start


def comment_seconds(service: CaseService, case_id: str, count: int) -> float:
    """Median seconds of one comment by the consumer through the whole command path."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        service.execute(actor=CONSUMER, case_id=case_id, name="comment", data={"body": "Still waiting."})
        times.append(time.perf_counter() - start)
    return median(times)


def run(ctx: Context) -> Outcome:
    out = Outcome()
    data = loaded(ctx)
    h = data.histories
    service = make_service(data.url)
    try:
        for _ in range(ctx.warmups):
            replay_seconds(service, [h.long_id])
            replay_seconds(service, h.short_ids)
        longs, shorts = [], []
        runs = ctx.runs * RUNS_PER_RUN
        for index in range(runs):
            longs.append(replay_seconds(service, [h.long_id]))
            shorts.append(replay_seconds(service, h.short_ids))
            log(f"B4: run {index + 1}/{runs}: long {longs[-1] * 1000:.0f} ms, shorts {shorts[-1] * 1000:.0f} ms")
        comments = ctx.pick(quick=5, full=20)
        comment_seconds(service, h.short_ids[-1], 2)
        long_cmd = comment_seconds(service, h.long_id, comments)
        short_cmd = comment_seconds(service, h.short_ids[0], comments)
    finally:
        service.db.dispose()
    long_s, short_s = median(longs), median(shorts)
    per_long, per_short = long_s / h.long_events, short_s / h.short_events
    # Judged on the median of each run's own ratio: a run's long and short replays follow
    # each other within a second, so they share the machine's speed at that moment, which
    # on the shared host drifted by 1.7x within one B4 (runs of 371 to 735 ms for the same
    # replay); the ratio of the two separate medians pairs samples from different moments.
    ratio = median([(lo / h.long_events) / (sh / h.short_events) for lo, sh in zip(longs, shorts, strict=True)])
    unpaired = per_long / per_short
    out.rows.append(
        Row(
            f"B4 replay: 1 x {h.long_events:,} events vs {len(h.short_ids)} x ~{h.short_events // len(h.short_ids)}",
            f"{fmt_ms(short_s)} ({fmt_rate(1 / per_short, 'ev/s')})",
            f"{fmt_ms(long_s)} ({fmt_rate(1 / per_long, 'ev/s')})",
            ratio,
            f"<= {TARGET}",
            ratio <= TARGET,
        )
    )
    out.rows.append(
        Row(
            f"B4 one comment on the {h.long_events:,}-event case vs on a ~100-event one",
            fmt_ms(short_cmd),
            fmt_ms(long_cmd),
            long_cmd / short_cmd,
            "",
            None,
        )
    )
    out.notes.append(
        f"B4: ratio per event ({h.long_events:,} events in the long case, {h.short_events:,} in the short ones), "
        f"{runs} alternating runs, each replay in its own read transaction; the ratio is the median of each "
        f"run's own ratio (the ratio of the two median times, {unpaired:.3f}, pairs different moments). "
        "The comment row: CaseService.execute of a comment on each case "
        "(after the replays; B5 verifies the cases with these comments)."
    )
    return out
