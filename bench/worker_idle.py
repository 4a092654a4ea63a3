"""The worker at rest: statements per second it sends while nothing is pending, and commit-to-request latency.

A real worker process (``python -m worker worker``, default settings: poll every 5 s, LISTEN calsync_outbox)
runs against a fresh database at head and a Cal.com simulator process:
1. idle load: nothing pending for ``--idle-seconds``; the statements of that database (pg_stat_statements,
   reset for that database only, track = top: what the client sends) and its committed transactions
   (pg_stat_database.xact_commit) per second; this script sends that database nothing meanwhile;
2. latency: ``--samples`` single bookings, one at a time, each once the worker says it is idle again
   (calsync.outbox_listeners.idle) plus ``--pause-ms``; latency = the simulator's receipt of the POST (the
   booking's createdAt, ms resolution, same machine clock) minus the moment the booking's commit returned.
   The first ``--warmup`` bookings after the worker's start (a new HTTP connection, first plans) are shown
   apart. Then, not part of the goal, ``--turning-samples`` bookings each 0..``--turning-ms`` ms after the
   previous one's request reached the simulator: commits that land while the worker turns idle.
Goals (issue: outbox worker): idle load <= 1 statement/s; commit-to-request p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time

import psycopg
from _common import ROOT, median, percentile, scratch_database, server_url
from worker_throughput import API_KEY, book, make_salon

from worker.devtools import simsetup
from worker.devtools.simulator import SimulatorConfig, SimulatorProcess


def wait_for(conn: psycopg.Connection, sql: str, params: list[object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not conn.execute(sql, params).fetchone()[0]:  # type: ignore[index]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for: {sql}")
        time.sleep(0.01)


IDLE = "SELECT EXISTS (SELECT 1 FROM calsync.outbox_listeners WHERE idle)"


def idle_load(url: str, seconds: float) -> tuple[float, float, list[tuple[int, str]]]:
    dbname = url.rsplit("/", 1)[1]
    xacts = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
    with psycopg.connect(url, autocommit=True) as conn:
        wait_for(conn, IDLE, [])
    # backends flush their counts to pg_stat_database up to 10 s late (PGSTAT_IDLE_INTERVAL): let the
    # start-up's settle, then count only the window (this script's own connection here is closed)
    time.sleep(11.0)
    with (
        psycopg.connect(url, autocommit=True) as db,
        psycopg.connect(server_url() + "/postgres", autocommit=True) as admin,
    ):
        db.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
        )
        x0 = admin.execute(xacts, [dbname]).fetchone()[0]  # type: ignore[index]
        t0 = time.monotonic()
        time.sleep(seconds)
        took = time.monotonic() - t0
        top = db.execute(
            "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT LIKE '%%pg_stat_statements%%' ORDER BY calls DESC"
        ).fetchall()
        time.sleep(11.0)  # the window's own counts, flushed late (the worker's are all there by now, plus ~1 s)
        x1 = admin.execute(xacts, [dbname]).fetchone()[0]  # type: ignore[index]
    # x1 includes this script's 2 statements on db and ~11 s more of the worker: scale by the window it covers
    return sum(int(c) for c, _ in top) / took, (x1 - x0 - 2) / (took + 11.0), top


def latencies(
    url: str, sim: SimulatorProcess, first: int, samples: int, pause_s: float, settle: bool
) -> tuple[list[float], list[float]]:
    """settle: each booking once the worker is idle again, plus pause_s; else 0..pause_s (random) after the
    previous booking's request reached the simulator, while the worker is turning idle."""
    out, commits = [], []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(first, first + samples):
            if settle:
                wait_for(conn, IDLE, [])
            time.sleep(pause_s if settle else random.uniform(0, pause_s))
            t0 = time.time()
            (appointment,) = book(conn, i)
            committed = time.time()
            commits.append((committed - t0) * 1000)
            deadline = time.monotonic() + 30
            while not (found := sim.bookings(metadata_key="calsync_appointment_id", metadata_value=str(appointment))):
                if time.monotonic() > deadline:
                    raise SystemExit(f"appointment {appointment} never reached the simulator")
                time.sleep(0.002)
            received = dt.datetime.fromisoformat(found[0]["createdAt"].replace("Z", "+00:00")).timestamp()
            out.append((received - committed) * 1000)
    return out, commits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--pause-ms", type=float, default=300.0)
    ap.add_argument("--warmup", type=int, default=3, help="first bookings after the worker's start, shown apart")
    ap.add_argument("--turning-samples", type=int, default=100, help="bookings while the worker turns idle (0: none)")
    ap.add_argument("--turning-ms", type=float, default=20.0)
    args = ap.parse_args()
    with (
        SimulatorProcess(SimulatorConfig(api_keys=(API_KEY,), rate_limit=1_000_000)) as sim,
        scratch_database("idle") as url,
        tempfile.TemporaryFile("w+") as log,
    ):
        make_salon(url)
        simsetup.register(url, sim.base_url)
        env = {**os.environ, "CALCOM_API_KEY": API_KEY, "CALSYNC_DATABASE_URL": url, "CALCOM_BASE_URL": sim.base_url}
        worker = subprocess.Popen([sys.executable, "-m", "worker", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            per_s, xact_per_s, top = idle_load(url, args.idle_seconds)
            lat, commits = latencies(url, sim, 1_000, args.warmup + args.samples, args.pause_ms / 1000, settle=True)
            turning, _ = latencies(url, sim, 2_000, args.turning_samples, args.turning_ms / 1000, settle=False)
        except BaseException:
            log.seek(0)
            print(log.read()[-5000:], file=sys.stderr)
            raise
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    print(f"\nidle worker (default settings), {args.idle_seconds:.0f} s with nothing pending:")
    for calls, q in top:
        print(f"  {calls:5d} calls  {q}")
    print(f"  statements/s           {per_s:6.2f}   (pg_stat_statements, track = top)")
    print(f"  transactions/s         {xact_per_s:6.2f}   (pg_stat_database.xact_commit)")
    cold, lat = lat[: args.warmup], lat[args.warmup :]
    print(f"\ncommit -> first request at the simulator, {len(lat)} single bookings on an idle worker:")
    print(
        f"  p50 {median(lat):6.1f} ms   p90 {percentile(lat, 90):6.1f} ms   p99 {percentile(lat, 99):6.1f} ms   max {max(lat):6.1f} ms"
    )
    print(f"  (the booking's INSERT + commit itself took {median(commits):.1f} ms median, not included)")
    print(
        f"  the first {args.warmup} after the worker's start (not in the figures): {', '.join(f'{x:.1f}' for x in cold)} ms"
    )
    if turning:
        print(
            f"\nthe same, each booking 0-{args.turning_ms:.0f} ms after the previous one's request (the worker turning idle), {len(turning)} bookings:"
        )
        print(f"  p50 {median(turning):6.1f} ms   p90 {percentile(turning, 90):6.1f} ms   p99 {percentile(turning, 99):6.1f} ms   "
              f"max {max(turning):6.1f} ms   over 1 s: {sum(x > 1000 for x in turning)}  (not part of the goal)")  # fmt: skip
    ok = per_s <= 1.0 and percentile(lat, 99) <= 50
    print(
        f"goal: idle <= 1 statement/s ({per_s:.2f}) and p99 <= 50 ms ({percentile(lat, 99):.1f}): {'met' if ok else 'missed'}"
    )


if __name__ == "__main__":
    main()
