"""Profile the engine side of a benchmark: ``python -m bench.profiling B1|B3|B4|B5 [--postgres URL]``.

Uses pyinstrument when it is installed (a call tree), else cProfile (standard library:
the functions with the most own and cumulative time). Not part of the harness run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sys
from collections.abc import Callable, Iterator

from bench.common import Backend, drive_case, log, make_service
from bench.context import Context


@contextlib.contextmanager
def _b1(ctx: Context) -> Iterator[Callable[[], None]]:
    with ctx.backend.fresh("profile") as url:
        service = make_service(url)
        for _ in range(3):
            drive_case(service)

        def work() -> None:
            for _ in range(20):
                drive_case(service)

        try:
            yield work
        finally:
            service.db.dispose()


@contextlib.contextmanager
def _b3(ctx: Context) -> Iterator[Callable[[], None]]:
    from bench.b3_sweep import add_due, sweep
    from bench.bulk import SWEEP_AT, scale_db
    from sla.clock import ManualClock

    db = scale_db(ctx, 10_000)
    service = make_service(db.url, clock=ManualClock(SWEEP_AT))
    add_due(service, 20)
    sweep(service, 20)

    def work() -> None:
        add_due(service, 100)
        sweep(service, 100)

    try:
        yield work
    finally:
        service.db.dispose()


@contextlib.contextmanager
def _history(ctx: Context, verify: bool) -> Iterator[Callable[[], None]]:
    from bench.b4_replay import replay_seconds
    from bench.b5_verify import full_seconds as verify_seconds
    from bench.history import loaded

    data = loaded(ctx)
    service = make_service(data.url)
    ids = [data.histories.long_id, *data.histories.short_ids]
    measure = verify_seconds if verify else replay_seconds
    measure(service, ids)

    def work() -> None:
        measure(service, ids)

    try:
        yield work
    finally:
        service.db.dispose()


WORKLOADS: dict[str, Callable[[Context], contextlib.AbstractContextManager[Callable[[], None]]]] = {
    "B1": _b1,
    "B3": _b3,
    "B4": lambda ctx: _history(ctx, verify=False),
    "B5": lambda ctx: _history(ctx, verify=True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=sorted(WORKLOADS))
    parser.add_argument("--postgres", default="", help="profile on PostgreSQL instead of SQLite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    backend = Backend("postgresql", args.postgres) if args.postgres else Backend("sqlite")
    ctx = Context(backend=backend, quick=True, runs=1)
    try:
        with WORKLOADS[args.benchmark](ctx) as work:
            log(f"profiling {args.benchmark} on {backend.kind}, {args.rounds} rounds")
            print(_profile(work, args.rounds))
    finally:
        ctx.close()
    return 0


def _profile(work: Callable[[], None], rounds: int) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(rounds):
            work()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        return out.getvalue()
    sampler = Profiler(interval=0.0005)
    sampler.start()
    for _ in range(rounds):
        work()
    sampler.stop()
    return str(sampler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    sys.exit(main())
