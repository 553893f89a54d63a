"""B8: a legitimate client's filings/s alone, and while a flood of junk-token requests runs.

One engine server (``uvicorn --factory api.main:create_app``, production settings, its own
database; the per-identity rate limit raised out of the way, the limit on failed
authentications at its default). The legitimate client (bench/loadgen.py, closed loop,
``LEGIT_CONNECTIONS`` keep-alive connections) files cases back to back. The flood is a
second load generator process on ``FLOOD_CONNECTIONS`` other connections, sending filings
with junk bearer tokens (well formed, each one different, signed with a foreign key, each
with an Idempotency-Key) as fast as the server answers, ignoring 429s. Runs alone and
flooded alternate; the ratio is the median alone rate over the median flooded rate (the
slowdown), target at most 2x. All three processes share the machine's cores, so the
flood's own client takes CPU from the server as a real attacker on the same host would not.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import CONSUMER, Outcome, Row, fmt_rate, log, median
from bench.context import Context
from bench.server import engine_env, loadgen_in_background, new_secret, run_loadgen, token_for, uvicorn_server

NAME = "B8"
TARGET = 2.0
LEGIT_CONNECTIONS = 2
FLOOD_CONNECTIONS = 64


def _filings(port: int, tokens: dict[str, str], duration: float, warmup: float) -> dict[str, Any]:
    return {
        "port": port,
        "mode": "engine",
        "tokens": tokens,
        "phase": "closed",
        "concurrency": LEGIT_CONNECTIONS,
        "steps": 1,  # the filing alone, then a new case
        "duration": duration,
        "warmup": warmup,
    }


def _rate(result: dict[str, Any]) -> float:
    return float(result["completed"]) / float(result["seconds"])


def run(ctx: Context) -> Outcome:
    out = Outcome()
    secret = new_secret()
    tokens = {"consumer": token_for(secret, CONSUMER)}
    seconds = ctx.pick(quick=1.5, full=8.0)
    warmup = ctx.pick(quick=0.3, full=1.0)
    flood_lead = 0.5  # the flood is under way before the measurement starts
    alone: list[float] = []
    flooded: list[float] = []
    junk: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with ctx.backend.fresh("b8") as url, uvicorn_server("api.main:create_app", engine_env(url, secret)) as server:
        log("B8: warm-up")
        run_loadgen([_filings(server.port, tokens, ctx.pick(quick=0.5, full=2.0), 0)])
        for index in range(ctx.runs):
            [quiet] = run_loadgen([_filings(server.port, tokens, seconds, warmup)])
            flood = {
                "port": server.port,
                "phase": "junk",
                "connections": FLOOD_CONNECTIONS,
                "duration": flood_lead + warmup + seconds + 0.5,
            }
            with loadgen_in_background([flood]) as flood_results:
                time.sleep(flood_lead)
                [busy] = run_loadgen([_filings(server.port, tokens, seconds, warmup)])
            alone.append(_rate(quiet))
            flooded.append(_rate(busy))
            junk.append(flood_results[0])
            errors += [r for r in (quiet, busy) if r.get("errors")]
            answered = sum(flood_results[0]["answers"].values())
            log(
                f"B8: run {index + 1}/{ctx.runs}: alone {alone[-1]:.0f} filings/s, flooded {flooded[-1]:.0f} "
                f"filings/s; junk answered {answered / flood_results[0]['seconds']:.0f}/s "
                f"{flood_results[0]['answers']}"
            )
    ratio = median(alone) / median(flooded) if median(flooded) > 0 else float("inf")
    out.rows.append(
        Row(
            f"B8 legitimate filings/s, alone vs under a junk-token flood ({FLOOD_CONNECTIONS} connections); "
            "ratio = slowdown",
            fmt_rate(median(alone), "filings/s"),
            fmt_rate(median(flooded), "filings/s"),
            ratio,
            f"<= {TARGET:g}",
            ratio <= TARGET,
        )
    )
    statuses: dict[str, int] = {}
    for result in junk:
        for status, count in result["answers"].items():
            statuses[status] = statuses.get(status, 0) + count
    junk_rate = median([sum(r["answers"].values()) / r["seconds"] for r in junk])
    out.notes.append(
        f"B8: the flood was answered at {junk_rate:.0f} requests/s (median of runs), by status over all runs "
        f"{statuses}: failed authentications are refused before any database work and throttled per client "
        f"address; the legitimate client, {LEGIT_CONNECTIONS} keep-alive connections filing back to back, "
        f"{seconds:g} s per run, medians of {ctx.runs} runs."
    )
    if errors:
        first = errors[0]
        out.notes.append(f"B8: the legitimate client had failed requests: {first['errors']} {first['samples'][:1]}")
    return out
