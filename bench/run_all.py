"""Run every benchmark in bench/ one after the other (``make bench``), each in its own process, and print its figures.

Each script prints its own figures and goal verdict; this runner streams them and ends with one line per script
(exit code and wall time). The order puts the short ones first. ``--only views,rate_limit`` picks scripts;
``--skip`` leaves some out. Arguments after ``--`` go to every script (for example ``-- --help``).
Exit code: 1 when any script failed (a missed goal is a figure, not a failure).
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ORDER = [
    "outbox_overhead",  # ~3 min
    "booking_throughput",  # ~3 min
    "booking_work",  # ~2 min
    "worker_idle",  # ~2 min
    "worker_throughput",  # ~5 min
    "rate_limit",  # ~3.5 min
    "views",  # ~8 min (1,000,000 appointments)
    "migrate_live",  # ~8 min (1,000,000 appointments)
    "webhooks",  # ~3 min
    "multi_company",  # ~6 min (20 companies, 3 workers, 5 minutes of backlog)
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated script names (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated script names to leave out")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="after --: arguments for every script")
    args = ap.parse_args()
    names = [n for n in (args.only.split(",") if args.only else ORDER) if n]
    unknown = [n for n in names + [s for s in args.skip.split(",") if s] if n not in ORDER]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ORDER)}")
    names = [n for n in names if n not in args.skip.split(",")]
    extra = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    results: list[tuple[str, int, float]] = []
    for name in names:
        print(f"\n===== bench/{name}.py =====", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *extra], cwd=HERE.parent)
        results.append((name, rc, time.monotonic() - t0))
    print("\n===== summary =====")
    for name, rc, took in results:
        print(f"  {name:<20} {'ok' if rc == 0 else f'FAILED (exit {rc})':<16} {took / 60:6.1f} min")
    sys.exit(1 if any(rc for _, rc, _ in results) else 0)


if __name__ == "__main__":
    main()
