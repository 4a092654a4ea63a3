"""Remediation view timings on 1,000,000 appointments with a realistic share of failures.

Generates ``--salons`` x 1,000 appointments (default 1,000,000) with ``--failed-permille`` failed (default
1, i.e. 1,000 failing syncs on 1M: a bad day for a system that remediates) and ``--pending-permille``
pending syncs (the app's kind of failures: cut HTTP 400s, past bookings, busy hosts) on revision 0001,
migrates to head, ANALYZEs, then runs each remediation view ``--repeat`` times (SELECT * and fetch every
row) and prints the median and worst time. Goal (issue 5): each view answers in <= 50 ms. Run it again with
``--failed-permille 5`` for a backlog five times larger.
``--database-url`` reuses a database generated earlier (``--keep``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg
from _common import Stopwatch, scratch_database

from worker.devtools import datagen
from worker.ops import migrate

VIEWS = ["sync_health", "error_distribution", "failed_syncs", "duplicate_bookings", "past_unsynced", "host_conflicts",
         "composites_without_phases", "customers_missing_contact", "appointments_without_service", "stuck_outbox",
         "dead_letters", "integrity_issues"]  # fmt: skip


def prepare(url: str, salons: int, failed: int, pending: int) -> None:
    sw = Stopwatch()
    migrate.upgrade(url, "0001")
    with psycopg.connect(url) as conn:
        datagen.generate(conn, datagen.Params(salons=salons, failed_permille=failed, pending_permille=pending))
    print(f"generated {salons * 1000:,} appointments in {sw():.0f} s", flush=True)
    sw = Stopwatch()
    migrate.upgrade(url, "heads")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"migrated to head and analyzed in {sw():.0f} s", flush=True)


def measure(url: str, repeat: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]  # noqa: S608
                  for t in ("appointments", "appointment_phases", "customers")}  # fmt: skip
        failing = conn.execute("SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed' "
                               "OR requires_manual_review").fetchone()[0]  # type: ignore[index]  # fmt: skip
        print(f"\n{counts['appointments']:,} appointments, {counts['appointment_phases']:,} phases, "
              f"{counts['customers']:,} customers, {failing:,} failing syncs")  # fmt: skip
        print(f"\n{'view':<30} {'rows':>7} {'median ms':>10} {'max ms':>8}  goal <= 50 ms")
        worst = 0.0
        for view in VIEWS:
            times, rows = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                rows = len(conn.execute(f"SELECT * FROM remediation.{view}").fetchall())  # noqa: S608
                times.append((time.perf_counter() - t0) * 1000)
            med = statistics.median(times)
            worst = max(worst, med)
            print(f"{view:<30} {rows:>7} {med:>10.1f} {max(times):>8.1f}  {'ok' if med <= 50 else 'MISSED'}")
        print(f"\nslowest view median: {worst:.1f} ms (goal <= 50 ms: {'met' if worst <= 50 else 'missed'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salons", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--failed-permille", type=int, default=1)
    ap.add_argument("--pending-permille", type=int, default=1)
    ap.add_argument("--database-url", help="measure an existing database instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the generated database (its URL is printed)")
    ap.add_argument("--prepare-only", action="store_true", help="generate and keep the database, measure nothing")
    args = ap.parse_args()
    if args.database_url:
        measure(args.database_url, args.repeat)
        return
    with scratch_database("views", keep=args.keep or args.prepare_only) as url:
        prepare(url, args.salons, args.failed_permille, args.pending_permille)
        if not args.prepare_only:
            measure(url, args.repeat)
        if args.keep or args.prepare_only:
            print(f"\nkept: {url}")


if __name__ == "__main__":
    main()
