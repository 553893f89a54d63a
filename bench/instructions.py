"""Instructions per B1 command, counted by valgrind's callgrind: a cost that does not depend on
what else the machine is doing, for comparisons a loaded machine cannot resolve by the clock.

    python -m bench.instructions --variants protected,unprotected
    python -m bench.instructions --trees OLD_CHECKOUT,NEW_CHECKOUT --variants protected
    python -m bench.instructions --variants protected,outbox

``outbox`` is ``protected`` with the transactional outbox's write hook (outbox/hook.py) wired as
the app wires it: the pair gives the hook's instructions per command (issue #21's B12).

Each measurement runs the B1 cycle (bench/common.py CYCLE: 11 commands a case) in-process on
a SQLite file under callgrind twice, with ``cases`` and with ``2 * cases`` cases after the same
warm-up, and takes the difference: start-up, imports and warm-up cancel out, and what is left is
the instructions of ``cases`` cases' commands. Instructions count CPU work only: the same
statements and commits cost the same I/O on both sides, which a change that adds round trips or
writes would hide (say so beside the figure). A tree is a checkout of this project; its modules
are imported from it with this interpreter's packages.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = ("protected", "unprotected", "allow-all", "outbox")
WARM_CASES = 3
COLLECTED = re.compile(r"Collected : (\d+)")


def workload(variant: str, cases: int) -> None:
    """Run ``WARM_CASES`` then ``cases`` cases through the cycle (the process under callgrind)."""
    from bench.common import create_tables, drive_case, make_service
    from policies.base import AllowAllAuthorizer

    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as folder:
        url = f"sqlite:///{folder}/cases.db"
        create_tables(url)
        service = make_service(
            url,
            privacy=variant != "unprotected",
            authorizer=AllowAllAuthorizer() if variant == "allow-all" else None,
        )
        if variant == "outbox":
            from notify.rules import default_rules
            from outbox.hook import OutboxHook

            service.on_written = (OutboxHook(default_rules()),)
        for _ in range(WARM_CASES + cases):
            drive_case(service)
        service.db.dispose()


def count(tree: Path, variant: str, cases: int) -> int:
    """Instructions of one whole workload process run from ``tree``."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={folder}/out",
                sys.executable,
                # This file by its path, so a tree without it (an older checkout) can be measured:
                # what it imports comes from the tree (PYTHONPATH).
                str(Path(__file__).resolve()),
                "--run",
                variant,
                str(cases),
            ],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({tree}, {variant}, {cases}): {done.stderr[-2000:]}")
    return int(found.group(1))


def per_command(tree: Path, variant: str, cases: int) -> float:
    small = count(tree, variant, cases)
    large = count(tree, variant, 2 * cases)
    from bench.common import COMMANDS_PER_CASE

    return (large - small) / (cases * COMMANDS_PER_CASE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=".", help="comma-separated checkouts (default: this one)")
    parser.add_argument("--variants", default="protected", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--cases", type=int, default=10, help="cases per measured difference (default 10)")
    parser.add_argument("--run", nargs=2, metavar=("VARIANT", "CASES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        workload(args.run[0], int(args.run[1]))
        return 0
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    results: list[tuple[str, str, float]] = []
    for tree in trees:
        for variant in variants:
            print(f"measuring {variant} in {tree.name} ({args.cases} and {2 * args.cases} cases)...", flush=True)
            value = per_command(tree, variant, args.cases)
            results.append((tree.name, variant, value))
            print(f"  {value:,.0f} instructions per command", flush=True)
    first = results[0][2]
    print("\n| tree | variant | instructions per command | vs first |\n|---|---|---:|---:|")
    for tree_name, variant, value in results:
        print(f"| {tree_name} | {variant} | {value:,.0f} | {value / first:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
