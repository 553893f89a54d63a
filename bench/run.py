"""Run the benchmarks of the project's performance targets (docs/architecture.md) and write
``bench/results.md``.

    python -m bench.run [--quick] [--only B1,B3] [--postgres URL] [--output FILE]

Every benchmark measures its raw baseline in the same run, warms up first and
reports the median of several runs. SQLite always runs (a file database in a temp
directory, WAL, synchronous=FULL); PostgreSQL runs when ``--postgres`` is given or
``DISPUTES_TEST_DATABASE_URL`` is set, each dataset in a fresh schema dropped
afterwards. Progress goes to stderr; the tables go to stdout and to the output file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench.common import Backend, Outcome, Row, log, machine_info
from bench.context import Context
from bench.load import load_section

BENCHMARKS: dict[str, str] = {
    "B1": "bench.b1_inprocess",
    "B2": "bench.b2_http",
    "B3": "bench.b3_sweep",
    "B4": "bench.b4_replay",
    "B5": "bench.b5_verify",
    "B6": "bench.b6_memory",
    "B7": "bench.b7_scale",
    "B8": "bench.b8_junk_auth",
    "B9": "bench.b9_backup",
    "B10": "bench.b10_console",
    "B11": "bench.b11_oversight",
    "B12": "bench.b12_outbox",
    "B13": "bench.b13_triage",
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.md"


@dataclass
class Section:
    backend: Backend
    version: str
    outcome: Outcome
    seconds: float
    load: tuple[float, float]  # 1-minute load average at the start and at the end


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a bounded run (seconds per benchmark) for CI smoke")
    parser.add_argument("--only", default="", help="comma-separated benchmarks, e.g. B1,B3 (default: all)")
    parser.add_argument("--postgres", default="", help="PostgreSQL URL (default: $DISPUTES_TEST_DATABASE_URL)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only, even if the variable is set")
    parser.add_argument("--runs", type=int, default=0, help="measured runs per benchmark (default 5, quick 3)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the markdown results")
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = [n.strip().upper() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return names


def run_backend(backend: Backend, names: list[str], *, quick: bool, runs: int) -> Section:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    version = backend.version()
    log(f"=== {backend.title}: {version}")
    ctx = Context(backend=backend, quick=quick, runs=runs)
    outcome = Outcome()
    try:
        for name in names:
            log(f"--- {name} on {backend.kind}")
            try:
                module: ModuleType = importlib.import_module(BENCHMARKS[name])
                result = module.run(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                traceback.print_exc(file=sys.stderr)
                first_line = (str(exc).splitlines() or [""])[0]
                result = Outcome(
                    rows=[Row(f"{name} (error)", "", f"{type(exc).__name__}: {first_line}"[:200], None, "", False)]
                )
            outcome.rows.extend(result.rows)
            outcome.notes.extend(result.notes)
    finally:
        ctx.close()
    return Section(backend, version, outcome, time.monotonic() - started, (load_before, os.getloadavg()[0]))


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:.3f}" if ratio < 10 else f"{ratio:.1f}"


def table(section: Section) -> list[str]:
    lines = [
        f"## {section.backend.title}",
        "",
        f"{section.version}; this section took {section.seconds / 60:.1f} min; 1-minute load average "
        f"{section.load[0]:.1f} at its start, {section.load[1]:.1f} at its end.",
        "",
        "| benchmark | baseline | engine | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in section.outcome.rows:
        cells = [row.benchmark, row.baseline, row.engine, fmt_ratio(row.ratio), row.target, row.verdict]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if section.outcome.notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {note}" for note in section.outcome.notes]
    return lines


def shown_args(argv: Sequence[str]) -> list[str]:
    """The command line as run, with the database URL and output path left out."""
    shown: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("--postgres", "--output"):
            next(args, None)
            shown.append(f"{arg} {'URL' if arg == '--postgres' else 'FILE'}")
        elif arg.startswith("--postgres="):
            shown.append("--postgres=URL")
        elif arg.startswith("--output="):
            shown.append("--output=FILE")
        else:
            shown.append(arg)
    return shown


def render(sections: list[Section], argv: Sequence[str], quick: bool) -> str:
    info = machine_info()
    command = " ".join(["python -m bench.run", *shown_args(argv)])
    lines = [
        "# Benchmark results (issue #8; the targets: docs/architecture.md, Performance targets)",
        "",
        "Written by `python -m bench.run`; every ratio is against a raw baseline measured in the same run,",
        "each figure the median of several runs after a warm-up.",
        "",
        f"- command: `{command}`" + (" (quick: bounded sizes, not the targets' sizes)" if quick else ""),
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {info['cores']} cores, {info['cpu']}, {info['memory']} memory, {info['platform']}",
        f"- Python {info['python']}",
        "",
    ]
    for section in sections:
        lines += table(section)
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    names = selected(args.only)
    runs = args.runs or (3 if args.quick else 5)
    backends = [Backend("sqlite")]
    pg_url = args.postgres or os.environ.get("DISPUTES_TEST_DATABASE_URL", "")
    if pg_url and not args.no_postgres:
        backends.append(Backend("postgresql", pg_url))
    sections = [run_backend(b, names, quick=args.quick, runs=runs) for b in backends]
    text = render(sections, argv, args.quick)
    output = Path(args.output)
    # The multi-worker load table (python -m bench.load) has its own section: keep it.
    kept = load_section(output.read_text(encoding="utf-8")) if output.exists() else ""
    output.write_text(text + "\n" + ("\n" + kept if kept else ""), encoding="utf-8")
    print(text)
    log(f"wrote {output.name}")
    failed = [r for s in sections for r in s.outcome.rows if r.passed is False]
    log(f"{len(failed)} row(s) below target" if failed else "every target met")
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: servers stop, temp databases and schemas are removed


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())
