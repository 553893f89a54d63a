"""B2: HTTP commands/s through the real server versus a bare FastAPI endpoint doing the same writes.

Both servers are ``uvicorn --factory`` subprocesses (one process each, no access log)
on their own fresh database; the engine runs ``api.main:create_app`` with production
settings (JWT auth, If-Match, problem+json, guard middleware, Cedar policies; ticker
off, rate limit raised out of the way). The bare app (bench/bare_app.py) replays the
statements the engine issued for one case, recorded in this run. The load generator
(bench/loadgen.py) is a separate process driving the B1 cycle over keep-alive
connections: closed loop for the peak, then open loop (Poisson arrivals) at 70% of
the engine's peak for the latency. Runs of the two servers alternate.
"""

from __future__ import annotations

import contextlib
import pickle
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    CONSUMER,
    MEDIATOR,
    MERCHANT,
    Outcome,
    Row,
    fmt_rate,
    log,
    make_service,
    median,
    percentile,
    record_cycle,
)
from bench.context import Context
from bench.server import Server, engine_env, new_secret, run_loadgen, token_for, uvicorn_server

NAME = "B2"
TARGET = 0.5
P99_TARGET_MS = 25.0
LOAD_FACTOR = 0.7
CONCURRENCY = 8


def _closed(server: Server, mode: str, tokens: dict[str, str], duration: float, warmup: float) -> dict[str, Any]:
    return {
        "port": server.port,
        "mode": mode,
        "tokens": tokens,
        "phase": "closed",
        "concurrency": CONCURRENCY,
        "duration": duration,
        "warmup": warmup,
    }


def _open(
    server: Server, mode: str, tokens: dict[str, str], rate: float, duration: float, warmup: float, seed: int
) -> dict[str, Any]:
    return {
        "port": server.port,
        "mode": mode,
        "tokens": tokens,
        "phase": "open",
        "rate": rate,
        "duration": duration,
        "warmup": warmup,
        "seed": seed,
    }


def _rate(result: dict[str, Any]) -> float:
    return float(result["completed"]) / float(result["seconds"])


def _errors(label: str, results: list[dict[str, Any]]) -> list[str]:
    notes = []
    for result in results:
        if result.get("errors"):
            notes.append(
                f"B2 {label}: failed requests (by HTTP status; 'connection': closed by the server unanswered) "
                f"{result['errors']}: {'; '.join(result['samples'][:2])}"
            )
    return notes[:2]


def run(ctx: Context) -> Outcome:
    out = Outcome()
    secret = new_secret()
    tokens = {
        "consumer": token_for(secret, CONSUMER),
        "merchant": token_for(secret, MERCHANT),
        "mediator": token_for(secret, MEDIATOR),
    }
    peak_seconds = ctx.pick(quick=1.0, full=6.0)
    open_seconds = ctx.pick(quick=1.5, full=8.0)
    warmup = ctx.pick(quick=0.3, full=1.0)
    with contextlib.ExitStack() as stack:
        engine_url = stack.enter_context(ctx.backend.fresh("b2engine"))
        bare_url = stack.enter_context(ctx.backend.fresh("b2bare"))
        # The bare server replays the writes of the engine keeping texts in the log (as B1's raw
        # baseline: the protected engine's writes name a pseudonym and refs a replay cannot repeat).
        recorder = make_service(bare_url, privacy=False)
        template_id, steps = record_cycle(recorder)
        recorder.db.dispose()
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-b2-")))
        writes = directory / "writes.pickle"
        writes.write_bytes(pickle.dumps((template_id, steps)))
        log("B2: starting the engine and the bare servers")
        engine = stack.enter_context(uvicorn_server("api.main:create_app", engine_env(engine_url, secret)))
        bare = stack.enter_context(
            uvicorn_server(
                "bench.bare_app:create_app",
                {"BENCH_BARE_DATABASE_URL": bare_url, "BENCH_BARE_WRITES": str(writes)},
            )
        )
        log("B2: warm-up, then peak runs (closed loop), alternating servers")
        warm = ctx.pick(quick=0.5, full=3.0)
        phases = [_closed(engine, "engine", tokens, warm, 0), _closed(bare, "bare", tokens, warm, 0)]
        for _ in range(ctx.runs):
            phases.append(_closed(bare, "bare", tokens, peak_seconds, warmup))
            phases.append(_closed(engine, "engine", tokens, peak_seconds, warmup))
        results = run_loadgen(phases)[2:]
        bare_peaks, engine_peaks = results[0::2], results[1::2]
        for index, (e, b) in enumerate(zip(engine_peaks, bare_peaks, strict=True)):
            log(f"B2: peak run {index + 1}/{ctx.runs}: engine {_rate(e):.0f} cmd/s, bare {_rate(b):.0f} cmd/s")
        e_peak, b_peak = median([_rate(r) for r in engine_peaks]), median([_rate(r) for r in bare_peaks])
        rate = LOAD_FACTOR * e_peak
        log(f"B2: open loop at {rate:.0f} cmd/s (70% of the engine's peak)")
        phases = []
        for index in range(ctx.runs):
            phases.append(_open(engine, "engine", tokens, rate, open_seconds, warmup, seed=index + 1))
            phases.append(_open(bare, "bare", tokens, rate, open_seconds, warmup, seed=index + 1))
        results = run_loadgen(phases)
        engine_open, bare_open = results[0::2], results[1::2]
        for index, result in enumerate(engine_open):
            e_lat = result["latencies_ms"]
            log(
                f"B2: open loop {index + 1}/{ctx.runs}: engine p50 {percentile(e_lat, 50):.1f} ms "
                f"p99 {percentile(e_lat, 99):.1f} ms ({len(e_lat)} commands)"
            )

    def pct(results: list[dict[str, Any]], q: float) -> float:
        return median([percentile(r["latencies_ms"], q) for r in results if r["latencies_ms"]] or [float("nan")])

    e50, e99, b50, b99 = pct(engine_open, 50), pct(engine_open, 99), pct(bare_open, 50), pct(bare_open, 99)
    out.rows.append(
        Row(
            "B2 HTTP commands/s at peak (vs bare FastAPI)",
            fmt_rate(b_peak, "cmd/s"),
            fmt_rate(e_peak, "cmd/s"),
            e_peak / b_peak,
            f">= {TARGET}",
            e_peak / b_peak >= TARGET,
        )
    )
    out.rows.append(
        Row(
            f"B2 latency at 70% of engine peak ({rate:.0f} cmd/s), p50 / p99",
            f"{b50:.1f} / {b99:.1f} ms",
            f"{e50:.1f} / {e99:.1f} ms",
            None,
            f"p99 <= {P99_TARGET_MS:.0f} ms",
            e99 <= P99_TARGET_MS,
        )
    )
    peak_e = median([percentile(r["latencies_ms"], 99) for r in engine_peaks])
    peak_b = median([percentile(r["latencies_ms"], 99) for r in bare_peaks])
    out.notes.append(
        f"B2: peak = closed loop, {CONCURRENCY} keep-alive connections, {peak_seconds:g} s per run "
        f"(p99 there: engine {peak_e:.1f} ms, bare {peak_b:.1f} ms); latency = open loop, Poisson arrivals at "
        f"{LOAD_FACTOR:.0%} of the engine's peak for both servers, {open_seconds:g} s per run, measured from the "
        f"scheduled arrival; medians of {ctx.runs} runs."
    )
    out.notes += _errors("engine", engine_peaks + engine_open) + _errors("bare", bare_peaks + bare_open)
    return out
