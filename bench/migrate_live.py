"""The whole integrity chain applied to a live database of 1,000,000 appointments.

A database at revision 0001 gets ``--salons`` x 1,000 appointments (default 1,000 salons = 1,000,000
appointments with their phases). Writer threads then keep booking new appointments and moving existing
ones (each its own transaction, as the app does) while ``alembic upgrade heads`` runs in another
process. Every writer operation is timed. Prints:
- the total migration time (and per revision, from the migration's own log),
- writer operations and errors by SQLSTATE (goal: none apart from the rules' intended refusals),
- the longest writer stall, i.e. the slowest single operation, and p99/p50 (goal: longest <= 1 s).
Writer slots are unique by construction, so no rule should refuse anything; any error is reported.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import subprocess
import sys
import threading
import time

import psycopg
from _common import ROOT, Stopwatch, median, percentile, scratch_database

from worker.devtools import datagen
from worker.ops import migrate

BOOK = """
INSERT INTO appointments (company_id, branch_id, customer_id, service_id, staff_id, starts_at, ends_at, status, source)
VALUES (%(c)s, md5('branch-' || %(c)s)::uuid, %(cust)s, (%(c)s - 1) * 10 + 1, md5('staff-' || %(c)s || '-' || %(k)s)::uuid,
        %(start)s, %(start)s + interval '60 minutes', 'confirmed', 'bench')
RETURNING id
"""
MOVE = """
UPDATE appointments SET starts_at = %(start)s, ends_at = %(start)s + (ends_at - starts_at) WHERE id = %(id)s
"""


class Writer(threading.Thread):
    """Books and moves appointments in a loop; records every operation's latency and error."""

    def __init__(self, url: str, index: int, salons: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.index, self.salons, self.stop = url, index, salons, stop
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (start, latency)
        self.errors: collections.Counter[str] = collections.Counter()
        self.worst: tuple[float, str] = (0.0, "")

    def run(self) -> None:
        n = 0
        booked: list[int] = []
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                n += 1
                slot = n * 8 + self.index  # unique per writer and operation
                c = 1 + slot % self.salons
                h = (slot // self.salons) % 7
                day = slot // (self.salons * 7)
                start = dt.datetime(2032, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(days=day)
                params = {
                    "c": c,
                    "k": 0 if h == 0 else h + 1,
                    "cust": (c - 1) * 500 + (h + day * 7) % 500 + 1,
                    "start": start,
                }
                sql, what = (BOOK, "book") if n % 3 or not booked else (MOVE, "move")
                if what == "move":  # one of this writer's own bookings, onto a private timeline
                    params = {
                        "start": dt.datetime(2045, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=3 * slot),
                        "id": booked[(slot * 7919) % len(booked)],
                    }
                t0 = time.perf_counter()
                try:
                    cur = conn.execute(sql, params)
                    if what == "book" and (row := cur.fetchone()) is not None:
                        booked.append(int(row[0]))
                    state = "ok"
                except psycopg.Error as e:
                    state = e.sqlstate or type(e).__name__
                    self.errors[f"{what} {state}"] += 1
                took = time.perf_counter() - t0
                self.latencies.append(took)
                self.timeline.append((t0, took))
                if took > self.worst[0]:
                    self.worst = (took, f"{what} at {time.strftime('%H:%M:%S')} ({state})")

    def slowest_between(self, t0: float, t1: float) -> float:
        """The longest operation that was running at some moment between t0 and t1."""
        return max((took for start, took in self.timeline if t0 <= start + took and start <= t1), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salons", type=int, default=1000)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()
    with scratch_database("live", keep=args.keep) as url:
        migrate.upgrade(url, "0001")
        sw = Stopwatch()
        with psycopg.connect(url) as conn:
            datagen.generate(conn, datagen.Params(salons=args.salons))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            (n_appts,) = conn.execute("SELECT count(*) FROM appointments").fetchone()  # type: ignore[misc]
        print(f"generated {n_appts:,} appointments at revision 0001 in {sw():.0f} s", flush=True)

        stop = threading.Event()
        writers = [Writer(url, i, args.salons, stop) for i in range(args.writers)]
        for w in writers:
            w.start()
        time.sleep(5)  # writers at steady state before the deploy starts
        sw = Stopwatch()
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "migrate", "--database-url", url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ},
        )
        log: list[tuple[float, str]] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append((time.perf_counter(), line.rstrip()))
        returncode = proc.wait()
        migration_s = sw()
        time.sleep(5)  # and after it
        stop.set()
        for w in writers:
            w.join()
        if returncode:
            print("\n".join(line for _, line in log[-40:]))
        # per revision: from its "Running upgrade A -> B" line to the next
        marks = [(t, line.split("Running upgrade ")[1].split(",")[0]) for t, line in log if "Running upgrade" in line]
        spans = [
            (name, t, marks[i + 1][0] if i + 1 < len(marks) else sw.t0 + migration_s)
            for i, (t, name) in enumerate(marks)
        ]
        lat = [x for w in writers for x in w.latencies]
        errors: collections.Counter[str] = sum((w.errors for w in writers), collections.Counter())
        worst = max(w.worst for w in writers)
        print(f"\nintegrity chain on {n_appts:,} appointments with {args.writers} live writers:")
        print(
            f"  migration: {'ok' if returncode == 0 else 'FAILED rc=' + str(returncode)}, "
            f"{migration_s:.1f} s, now at {sorted(migrate.current_heads(url))}"
        )
        print(f"  writer operations: {len(lat):,}; errors: {dict(errors) or 'none'}")
        print(
            f"  writer latency: p50 {median(lat) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
            f"longest stall {worst[0] * 1000:.0f} ms ({worst[1]})   (goal <= 1000 ms)"
        )
        for name, t0, t1 in spans:
            stalls = [w.slowest_between(t0, t1) for w in writers]
            print(f"    {name:<14} {t1 - t0:7.1f} s   longest writer op meanwhile {max(stalls) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
