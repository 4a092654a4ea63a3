"""The webhook receiver under load: deliveries/s it accepts and applies, and its latency, while the app books.

A database at head with ``--salons`` x 1,000 generated appointments; some of their live, future, simple
appointments are marked booked at Cal.com (uid ``bench-<id>``). A real receiver process (``python -m worker
webhooks``) listens on 127.0.0.1; pgbench runs the app's booking workload (booking_throughput.py's book and move
scripts, ``--app-clients``) for the whole measurement. The deliveries, signed with the secret, built before any
timing: 45 % BOOKING_CREATED of bookings that are not ours (listed), 40 % BOOKING_RESCHEDULED of our appointments
(each appointment moved along a chain of uids, far apart in time so no rule refuses them), 5 % BOOKING_CANCELLED
of ours, 10 % redeliveries of earlier ones. Every answer must be 200 and every delivery stored and decided.

1. baseline: the app's booking tps alone (``--baseline-seconds``), for the ratio below;
2. throughput: ``--deliveries`` sent by ``--concurrency`` connections back to back (closed loop): deliveries/s;
3. latency: each of ``--rates`` deliveries/s sent on a fixed schedule for ``--latency-seconds`` (open loop, so a slow
   answer cannot slow the sender down and hide itself): p50/p99/max from send to answer;
then the app's booking tps during 2 and 3 against the baseline.
Goal (issue 12.6): >= 1,000 deliveries/s, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import psycopg
from _common import ROOT, median, percentile, pgbench_tps, scratch_database
from booking_throughput import BOOK, MOVE, prepare

from worker.webhooks.signature import sign

SECRET = "whsec_bench_0123456789abcdef"
BASE = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(trigger: str, payload: dict[str, object], n: int) -> bytes:
    created = BASE + dt.timedelta(milliseconds=n)
    doc = {
        "triggerEvent": trigger,
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "payload": payload,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def mark_booked(url: str, limit: int) -> list[int]:
    """Live future simple appointments, booked at Cal.com as the worker leaves them (uid bench-<id>)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET calsync.writer = 'worker'")
        rows = conn.execute(
            "UPDATE appointments SET calcom_v2_booking_uid = 'bench-' || id, calcom_sync_status = 'synced' "
            "WHERE id IN (SELECT id FROM appointments WHERE NOT is_composite AND staff_id IS NOT NULL "
            "AND status IN ('confirmed', 'pending', 'booked', 'scheduled') AND starts_at > now() + interval '1 day' "
            "ORDER BY id LIMIT %s) RETURNING id",
            [limit],
        ).fetchall()
        conn.execute("DELETE FROM calsync.outbox_delivery")
        conn.execute("DELETE FROM calsync.outbox")
        conn.execute("VACUUM ANALYZE")
    return sorted(int(r[0]) for r in rows)


class Deliveries:
    """Bodies built ahead of time, in an order where two deliveries of one appointment are far apart."""

    def __init__(self, appointments: list[int]) -> None:
        cancels = max(1, len(appointments) // 10)
        self.cancel_pool, self.chains = appointments[:cancels], appointments[cancels:]
        self.step = Counter[int]()
        self.n = 0
        self.sent: list[bytes] = []

    def next(self) -> bytes:
        self.n += 1
        n, slot = self.n, self.n % 20
        if slot < 2 and len(self.sent) > 100:  # a redelivery of an earlier one (same bytes)
            return self.sent[(n * 7919) % len(self.sent)]
        if slot < 11:
            start = BASE + dt.timedelta(hours=3 * n)
            raw = envelope("BOOKING_CREATED", {"uid": f"walk-in-{n}", "bookingId": 10_000_000 + n, "eventTypeId": 1,
                                               "startTime": iso(start), "endTime": iso(start + dt.timedelta(minutes=30)),
                                               "status": "ACCEPTED", "metadata": {}}, n)  # fmt: skip
        elif slot == 11 and self.cancel_pool:
            a = self.cancel_pool.pop()
            raw = envelope("BOOKING_CANCELLED", {"uid": f"bench-{a}", "status": "CANCELLED",
                                                 "cancellationReason": "bench", "cancelledBy": "bench@example.com"}, n)  # fmt: skip
        else:
            a = self.chains[n % len(self.chains)]
            s = self.step[a]
            self.step[a] += 1
            old = f"bench-{a}" if s == 0 else f"bench-{a}-{s}"
            start = BASE + dt.timedelta(days=a % 3000, hours=3 * s)
            raw = envelope("BOOKING_RESCHEDULED", {"uid": f"bench-{a}-{s + 1}", "rescheduleUid": old,
                                                   "bookingId": 20_000_000 + n, "startTime": iso(start),
                                                   "endTime": iso(start + dt.timedelta(minutes=30)),
                                                   "status": "ACCEPTED",
                                                   "metadata": {"calsync_appointment_id": str(a)}}, n)  # fmt: skip
        self.sent.append(raw)
        return raw


def headers(raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Cal-Signature-256": sign(SECRET, raw),
            "X-Cal-Webhook-Version": "2021-10-20"}  # fmt: skip


async def closed_loop(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], Counter[int]]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    queue = list(reversed(bodies))
    prepared = {id(b): headers(b) for b in bodies}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def lane() -> None:
            while queue:
                raw = queue.pop()
                t0 = time.perf_counter()
                async with session.post(url, data=raw, headers=prepared[id(raw)]) as r:
                    await r.read()
                    statuses[r.status] += 1
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies, statuses


async def open_loop(url: str, bodies: list[bytes], rate: float) -> tuple[float, list[float], Counter[int]]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    prepared = [(b, headers(b)) for b in bodies]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(raw: bytes, h: dict[str, str]) -> None:
            t0 = time.perf_counter()
            async with session.post(url, data=raw, headers=h) as r:
                await r.read()
                statuses[r.status] += 1
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        for i, (raw, h) in enumerate(prepared):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(raw, h)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - start, latencies, statuses


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_receiver(url: str, pool: int, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "CALSYNC_DATABASE_URL": url, "CALCOM_WEBHOOK_SECRET": SECRET,
           "CALSYNC_WEBHOOK_LISTEN": "127.0.0.1:0", "CALSYNC_WEBHOOK_POOL": str(pool)}  # fmt: skip
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "worker", "webhooks"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r'"event": "webhooks_listening".*"port": (\d+)', log_path.read_text(errors="replace"))
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}/webhooks/calcom"
        if proc.poll() is not None:
            raise SystemExit(f"the receiver exited: {log_path.read_text()}")
        time.sleep(0.05)
    raise SystemExit("the receiver did not start")


def report(name: str, seconds: float, latencies: list[float], statuses: Counter[int]) -> float:
    ms = [x * 1000 for x in latencies]
    rate = len(latencies) / seconds
    print(f"{name}: {len(latencies)} deliveries in {seconds:.2f} s = {rate:,.0f}/s; latency p50 {median(ms):.1f} ms, "
          f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms; answers {dict(statuses)}", flush=True)  # fmt: skip
    if set(statuses) != {200}:
        raise SystemExit(f"{name}: not every answer was 200: {dict(statuses)}")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salons", type=int, default=5)
    ap.add_argument("--booked", type=int, default=3000, help="appointments marked booked at Cal.com")
    ap.add_argument("--deliveries", type=int, default=20_000, help="throughput phase")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rates", default="1000,250", help="latency phases: deliveries per second offered, each")
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--app-clients", type=int, default=2, help="pgbench clients booking meanwhile")
    ap.add_argument("--baseline-seconds", type=int, default=10)
    ap.add_argument("--pool", type=int, default=8, help="the receiver's database connections")
    args = ap.parse_args()
    with scratch_database("webhooks") as url, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        prepare(url, args.salons, True)
        booked = mark_booked(url, args.booked)
        print(f"{args.salons * 1000} appointments, {len(booked)} booked at Cal.com", flush=True)
        gen = Deliveries(booked)
        throughput_bodies = [gen.next() for _ in range(args.deliveries)]
        rates = [float(r) for r in args.rates.split(",") if r]
        latency_bodies = [[gen.next() for _ in range(int(r * args.latency_seconds))] for r in rates]
        (tmp / "book.sql").write_text(BOOK.format(salons=args.salons))
        (tmp / "move.sql").write_text(MOVE.format(window=2000))
        scripts = [f"{tmp / 'book.sql'}@7", f"{tmp / 'move.sql'}@3"]
        baseline = pgbench_tps(url, scripts, args.app_clients, args.baseline_seconds)
        print(f"app booking load alone: {baseline:.0f} tps ({args.app_clients} pgbench clients)", flush=True)
        receiver, hook_url = start_receiver(url, args.pool, tmp / "receiver.log")
        try:
            asyncio.run(closed_loop(hook_url, [gen.next() for _ in range(500)], 8))  # warm-up: connections, plans
            under: list[float] = []
            app_failed: list[str] = []
            budget = int(args.deliveries / 300 + args.latency_seconds * len(rates) * 2 + 20)

            def app_load() -> None:
                try:
                    under.append(pgbench_tps(url, scripts, args.app_clients, budget))
                except (Exception, SystemExit) as e:  # reported below: the receiver's figures stand on their own
                    app_failed.append(
                        f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
                    )

            app = threading.Thread(target=app_load)
            app.start()
            time.sleep(1.0)
            cpu0 = cpu_seconds(receiver.pid)
            seconds, lat, st = asyncio.run(closed_loop(hook_url, throughput_bodies, args.concurrency))
            rate = report(f"throughput ({args.concurrency} connections)", seconds, lat, st)
            cpu = cpu_seconds(receiver.pid) - cpu0
            print(f"  the receiver process used {cpu:.1f} CPU s: {cpu / len(lat) * 1e6:.0f} us per delivery "
                  f"(the rest of each delivery is PostgreSQL's and this load generator's)", flush=True)  # fmt: skip
            p99s = {}
            for r, bodies in zip(rates, latency_bodies, strict=True):
                seconds, lat, st = asyncio.run(open_loop(hook_url, bodies, r))
                report(f"latency at {r:,.0f}/s offered", seconds, lat, st)
                p99s[r] = percentile([x * 1000 for x in lat], 99)
            p99 = p99s[rates[0]]
            app.join()
        finally:
            receiver.terminate()
            receiver.wait(20)
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT outcome, count(*) FROM calsync.webhook_deliveries GROUP BY 1 ORDER BY 2 DESC")
            outcomes = {str(o): int(c) for o, c in rows}
            examples = conn.execute(
                "SELECT DISTINCT ON (outcome) outcome, detail FROM calsync.webhook_deliveries "
                "WHERE outcome IN ('conflict', 'parked', 'refused', 'unmatched') ORDER BY outcome, id"
            ).fetchall()
        print(f"stored deliveries by outcome: {outcomes}")
        for outcome, detail in examples:
            print(f"  e.g. {outcome}: {detail}")
        if under:
            print(f"app booking load meanwhile: {under[0]:.0f} tps ({under[0] / baseline:.2f}x of alone)")
        else:
            print(f"app booking load meanwhile: pgbench did not finish ({'; '.join(app_failed) or 'no figure'})")
        met = rate >= 1000 and p99 <= 50
        print(f"goal: >= 1,000 deliveries/s ({rate:,.0f}) and p99 <= 50 ms at {rates[0]:,.0f}/s ({p99:.1f}): "
              f"{'met' if met else 'missed'}; p99 by offered rate: {', '.join(f'{r:,.0f}/s {v:.1f} ms' for r, v in p99s.items())}")  # fmt: skip


if __name__ == "__main__":
    main()
