"""The webhook receiver under load: deliveries/s it accepts and applies, and its latency, while the app books.

A database at head with ``--salons`` x 1,000 generated appointments; some of their live, future, simple
appointments are marked booked at Cal.com (uid ``bench-<id>``). A real receiver process (``python -m worker
webhooks``) listens on 127.0.0.1; pgbench runs the app's booking workload (booking_throughput.py's book and move
scripts, ``--app-clients``) for the whole measurement. The deliveries, signed with the secret, built before any
timing: 45 % BOOKING_CREATED of bookings that are not ours (listed), 40 % BOOKING_RESCHEDULED of our appointments
(each appointment moved along a chain of uids, far apart in time so no rule refuses them), 5 % BOOKING_CANCELLED
of ours, 10 % redeliveries of earlier ones. Every answer must be 200 and every delivery stored and decided.

"The database under the app's booking load" is pgbench at a fixed rate, ``--app-rate`` transactions/s (pgbench
``-R``, 70 % bookings, 30 % moves). The default, 200/s, is far above what a salon chain books: 200 salons with 10
chairs each and 15 appointments a chair a day make 30,000 appointments a day, under 1/s over 10 opening hours and
a few per second at the busiest hour; 200/s is about 50x that peak, each booking and move going through the
integrity layer and the outbox. ``--app-rate 0`` runs pgbench unthrottled (as fast as
``--app-clients`` clients go, what this bench did until 2026-12-02): a saturated database, not an app's load,
which on a 2-core machine measures how the cores are shared more than the receiver. The report says which ran
and the app's tps in each phase against its target (from pgbench's per-second progress).

1. baseline: the app's booking load alone (``--baseline-seconds``): tps and mean latency, for the ratios below;
2. throughput: ``--deliveries`` sent by ``--concurrency`` connections back to back (closed loop): deliveries/s;
3. latency: each of ``--rates`` deliveries/s sent on a fixed schedule for ``--latency-seconds`` (open loop, so a slow
   answer cannot slow the sender down and hide itself): p50/p99/max from send to answer;
then the app's booking tps during 2 and 3 against the target (throttled) or the baseline (unthrottled), and in 3 the
database's WAL a second, what its active sessions waited on (sampled every 10 ms: the WAL flush is the disk's) and
the disk's own flush latency meanwhile (an 8 kB write and fdatasync every 20 ms beside the server's data).
Goal (issue 12.6): >= 1,000 deliveries/s, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
from _common import PG_BINDIR, ROOT, median, percentile, scratch_database
from booking_throughput import BOOK, MOVE, prepare

from worker.webhooks.settings import WebhookSettings
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


def request_bytes(url: str, raw: bytes) -> bytes:
    """The whole HTTP/1.1 request for ``raw``, built before any timing: the headers aiohttp's client sent (the
    receiver stores them), the signature, keep-alive."""
    rest = url.split("://", 1)[1]
    host, path = rest.split("/", 1)
    lines = [f"POST /{path} HTTP/1.1", f"Host: {host}", "Accept: */*", "Accept-Encoding: gzip, deflate",
             "User-Agent: calsync-bench", f"Content-Length: {len(raw)}",
             *(f"{k}: {v}" for k, v in headers(raw).items())]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


class _Connection(asyncio.Protocol):
    """One keep-alive connection of the bench's own sender: writes a pre-built request, waits for the whole
    answer (status line, headers, Content-Length bytes of body). A few microseconds of Python per delivery, where
    aiohttp's client spends about as much CPU as the receiver, on the same two cores."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.on_answer: Callable[[int], None] | None = None  # the open loop's: no task or future per delivery
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or (self.waiter is None and self.on_answer is None):
            return
        m = re.search(rb"\r\n[Cc]ontent-[Ll]ength: *(\d+)", self.buf[: end + 2])
        total = end + 4 + (int(m[1]) if m else 0)
        if len(self.buf) >= total:
            status = int(self.buf[9:12])
            del self.buf[:total]
            if self.on_answer is not None:
                answer, self.on_answer = self.on_answer, None
                answer(status)
                return
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_answer is not None:  # counted as status 0: the bench then fails (every answer must be 200)
            answer, self.on_answer = self.on_answer, None
            answer(0)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"the receiver closed the connection: {exc}"))

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def _connect(url: str) -> _Connection:
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    _, conn = await asyncio.get_running_loop().create_connection(_Connection, host, int(port))
    return conn


async def closed_loop(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], Counter[int]]:
    """``concurrency`` connections, each sending its next delivery when the previous one is answered."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    queue = [request_bytes(url, b) for b in reversed(bodies)]
    conns = [await _connect(url) for _ in range(concurrency)]

    async def lane(conn: _Connection) -> None:
        while queue:
            request = queue.pop()
            t0 = time.perf_counter()
            statuses[await conn.send(request)] += 1
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane(c) for c in conns))
    seconds = time.perf_counter() - t0
    for c in conns:
        assert c.transport is not None
        c.transport.close()
    return seconds, latencies, statuses


async def open_loop(url: str, bodies: list[bytes], rate: float) -> tuple[float, list[float], Counter[int]]:
    """Delivery i is due at start + i/rate and sent then on an idle connection (a new one when none is idle),
    whatever the answers before it: a slow answer cannot slow the sender down. Its latency counts from when it
    was due, not from when it went out, so a sender that falls behind shows in the figures instead of hiding a
    slow receiver. No task or future per delivery: each wake-up sends every delivery that is due, and the
    answer is a callback (the sender shares the two cores with what it measures). Latencies in schedule order."""
    statuses: Counter[int] = Counter()
    prepared = [request_bytes(url, b) for b in bodies]
    idle = [await _connect(url) for _ in range(min(256, len(bodies)))]
    everyone = list(idle)
    finished = asyncio.get_running_loop().create_future()
    start, n = time.perf_counter(), len(prepared)
    latencies = [0.0] * n

    def answered(conn: _Connection, i: int, status: int) -> None:
        latencies[i] = time.perf_counter() - (start + i / rate)
        statuses[status] += 1
        if status:
            idle.append(conn)
        if statuses.total() == n and not finished.done():
            finished.set_result(None)

    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and start + i / rate <= now:
            if idle:
                conn = idle.pop()
            else:
                conn = await _connect(url)
                everyone.append(conn)
            conn.on_answer = functools.partial(answered, conn, i)
            assert conn.transport is not None
            conn.transport.write(prepared[i])
            i += 1
        if i < n:  # at least 1 ms: wake-ups, not deliveries, cost the sender; each sends all that are due
            await asyncio.sleep(max(0.001, start + i / rate - time.perf_counter()))
    await finished
    seconds = time.perf_counter() - start
    for c in everyone:
        assert c.transport is not None
        c.transport.close()
    return seconds, latencies, statuses


async def aiohttp_closed_loop(
    url: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], Counter[int]]:
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


async def aiohttp_open_loop(url: str, bodies: list[bytes], rate: float) -> tuple[float, list[float], Counter[int]]:
    """As open_loop, with aiohttp's client and a task per delivery; latencies in schedule order."""
    statuses: Counter[int] = Counter()
    latencies = [0.0] * len(bodies)
    prepared = [(b, headers(b)) for b in bodies]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int, raw: bytes, h: dict[str, str]) -> None:
            t0 = time.perf_counter()
            async with session.post(url, data=raw, headers=h) as r:
                await r.read()
                statuses[r.status] += 1
            latencies[i] = time.perf_counter() - t0

        tasks = []
        start = time.perf_counter()
        for i, (raw, h) in enumerate(prepared):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, raw, h)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - start, latencies, statuses


@dataclass
class AppFigures:
    tps: float
    latency_ms: float  # pgbench's mean latency (with -R: from the scheduled start, so waiting for a client counts)
    failed: int
    seconds: int


class AppLoad:
    """pgbench running the app's bookings and moves in the background, ``rate`` transactions/s (0: unthrottled),
    reporting every second (``-P 1 --progress-timestamp``), so the tps of any window of the run can be read."""

    _PROGRESS = re.compile(r"progress: ([0-9.]+) s, ([0-9.]+) tps, lat ([0-9.]+) ms.*?(?:, (\d+) failed)?(?:,|$)")

    def __init__(self, url: str, scripts: list[str], clients: int, rate: float) -> None:
        files = [arg for script in scripts for arg in ("-f", script)]
        throttle = ["-R", f"{rate:g}"] if rate > 0 else []
        cmd = [str(PG_BINDIR / "pgbench"), "-n", "-c", str(clients), "-j", str(min(2, clients)), "-T", "86400",
               "-P", "1", "--progress-timestamp", *throttle, *files, url]  # fmt: skip
        self.rate = rate
        self.samples: list[tuple[float, float, float, int]] = []  # (end of the second, tps, latency ms, failed)
        self.other: list[str] = []
        self.stopped = False
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = self._PROGRESS.search(line)
            if m:
                self.samples.append((float(m[1]), float(m[2]), float(m[3]), int(m[4] or 0)))
            elif line.strip():
                self.other.append(line.strip())

    def window(self, t0: float, t1: float) -> AppFigures | None:
        """The app's figures over the whole seconds inside [t0, t1] (time.time())."""
        inside = [x for x in self.samples if t0 + 1 <= x[0] <= t1]
        if not inside:
            return None
        tps = sum(x[1] for x in inside) / len(inside)
        lat = sum(x[1] * x[2] for x in inside) / max(sum(x[1] for x in inside), 1e-9)
        return AppFigures(tps, lat, sum(x[3] for x in inside), len(inside))

    def failure(self) -> str | None:
        """What went wrong, if pgbench stopped by itself or reported failed transactions."""
        if not self.stopped and self.proc.poll() is not None:
            return f"pgbench exited ({self.proc.returncode}): {'; '.join(self.other[-3:]) or 'no output'}"
        failed = sum(x[3] for x in self.samples)
        return f"{failed} failed transactions" if failed else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.stopped = True
            self.proc.terminate()
        self.proc.wait(20)
        self.reader.join(5)

    @staticmethod
    def describe_rate(rate: float, clients: int) -> str:
        if rate > 0:
            return f"throttled to {rate:g} tps (pgbench -R, {clients} clients)"
        return f"unthrottled (--app-rate 0: as fast as {clients} pgbench clients go)"


def statements_reset(url: str, track_all: bool = False) -> None:
    """Zero pg_stat_statements (preloaded by the embedded server), so the receiver's calls can be counted;
    ``track_all``: the statements inside the functions too (for new sessions of the database)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            if track_all:
                conn.execute(f"ALTER DATABASE {conn.info.dbname} SET pg_stat_statements.track = 'all'")
                conn.execute(f"ALTER DATABASE {conn.info.dbname} SET pg_stat_statements.track_planning = on")
            conn.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error:
        pass


def statements_report(url: str, deliveries: int, track_all: bool = False) -> None:
    """The receiver's statements since the reset: calls, deliveries per call, server time per call and delivery."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT calls, rows, total_exec_time, query FROM pg_stat_statements "
                "WHERE toplevel AND query ILIKE '%receive_webhook%' AND dbid = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()) ORDER BY total_exec_time DESC"
            ).fetchall()
            top = planned = []
            if track_all:
                top = conn.execute(
                    "SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM "
                    "pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "ORDER BY total_exec_time DESC LIMIT 15"
                ).fetchall()
                planned = conn.execute(
                    "SELECT calls, plans, total_plan_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) FROM "
                    "pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND plans > 0 ORDER BY total_plan_time DESC LIMIT 12"
                ).fetchall()
    except psycopg.Error as e:
        print(f"  (pg_stat_statements not available: {type(e).__name__})")
        return
    calls = sum(int(r[0]) for r in rows)
    if track_all:
        for c, ms, q in top:
            print(f"    {ms / max(deliveries, 1):7.3f} ms/delivery  {c:7d} calls  {q}")
        print("    planning (statements planned again and again: plans close to calls):")
        for c, n, ms, q in planned:
            print(f"    {ms / max(deliveries, 1):7.3f} ms/delivery planning  {n:7d} plans of {c:7d} calls  {q}")
    for c, n, ms, q in rows:
        name = "receive_webhooks (a batch)" if "receive_webhooks" in q else "receive_webhook (one)"
        print(f"  database: {name}: {c} calls, {n / max(c, 1):.1f} deliveries per call, {ms / max(c, 1):.2f} ms per "
              f"call, {ms / max(n, 1):.3f} ms per delivery")  # fmt: skip
    print(f"  database round trips per delivery: {calls / max(deliveries, 1):.3f}", flush=True)


class WaitSampler:
    """What the database's active sessions wait on, sampled every ``every`` s while a phase runs (pg_stat_activity):
    the share of samples per wait (none: on the CPU). A p99 made of commits waiting for the WAL flush is the
    disk's, not the receiver's; the report says which it is."""

    def __init__(self, url: str, every: float) -> None:
        self.url, self.every, self.counts = url, every, Counter[str]()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopping.wait(self.every):
                for wait_type, wait in conn.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ):
                    self.counts["on the CPU" if wait_type is None else f"{wait_type}:{wait}"] += 1

    def stop(self) -> str:
        self.stopping.set()
        self.thread.join(5)
        total = sum(self.counts.values()) or 1
        flush = sum(n for k, n in self.counts.items() if k in ("LWLock:WALWrite", "IO:WALSync", "IO:WALWrite"))
        top = ", ".join(f"{k} {100 * n / total:.0f} %" for k, n in self.counts.most_common(4))
        return f"waiting for the WAL flush {100 * flush / total:.0f} % of active-session samples ({top})"


class FlushProbe:
    """The disk's own flush latency while a phase runs: an 8 kB write and fdatasync every ``every`` s to a file beside the
    database's (``directory``), as a commit's WAL flush is. p50/p99 of those; slow flushes here make slow commits
    for everyone, the receiver's included."""

    def __init__(self, directory: Path, every: float) -> None:
        self.path, self.every = directory / f"flush-probe-{os.getpid()}", every
        self.times: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        block = os.urandom(8192)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while not self.stopping.wait(self.every):
                t0 = time.perf_counter()
                os.pwrite(fd, block, 0)
                os.fdatasync(fd)
                self.times.append((time.perf_counter() - t0) * 1000)
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def stop(self) -> str:
        self.stopping.set()
        self.thread.join(5)
        if not self.times:
            return "no flush measured"
        return (f"the disk's 8 kB fdatasync meanwhile: p50 {median(self.times):.2f} ms, p99 "
                f"{percentile(self.times, 99):.1f} ms, max {max(self.times):.1f} ms ({len(self.times)} flushes)")  # fmt: skip


def wal_lsn(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])  # type: ignore[index]


def wal_since(url: str, start: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", [start]).fetchone()[0])  # type: ignore[index]


def autovacuum_since(url: str, since: float) -> str:
    """The tables autovacuum vacuumed or analyzed since ``since`` (a time.time()): a pass over a young, busy table
    (every page new) reads it and every index whole while the phase runs, and its tail shows it."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schemaname || '.' || relname, last_autovacuum >= to_timestamp(%(t)s), "
            "last_autoanalyze >= to_timestamp(%(t)s) FROM pg_stat_all_tables "
            "WHERE schemaname IN ('public', 'calsync', 'remediation') "
            "AND (last_autovacuum >= to_timestamp(%(t)s) OR last_autoanalyze >= to_timestamp(%(t)s)) ORDER BY 1",
            {"t": since},
        ).fetchall()
    if not rows:
        return "autovacuum: none during the phase"
    passes = (f"{name} ({' and '.join(k for k, ran in (('vacuum', v), ('analyze', a)) if ran)})" for name, v, a in rows)
    return "autovacuum during the phase: " + ", ".join(passes)


def receiver_backends(url: str, receiver_pid: int) -> list[int]:
    """The server processes of the receiver's pool (the sessions whose client port belongs to the receiver)."""
    inodes = {os.readlink(f"/proc/{receiver_pid}/fd/{fd}") for fd in os.listdir(f"/proc/{receiver_pid}/fd")}
    mine = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if f"socket:[{fields[9]}]" in inodes:
            mine.add(int(fields[1].split(":")[1], 16))
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() AND client_port > 0"
        ).fetchall()
    return [int(pid) for pid, port in rows if port in mine]


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a server process that has gone
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_receivers(url: str, args: argparse.Namespace, tmp: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    """``--processes`` receivers; with more than one, all on one port (CALSYNC_WEBHOOK_REUSE_PORT), the first
    taking a free port and the others that one."""
    procs: list[subprocess.Popen[bytes]] = []
    port = "0"
    for i in range(args.processes):
        env = {**os.environ, "CALSYNC_DATABASE_URL": url, "CALCOM_WEBHOOK_SECRET": SECRET,
               "CALSYNC_WEBHOOK_LISTEN": f"127.0.0.1:{port}", "CALSYNC_WEBHOOK_POOL": str(args.pool),
               "CALSYNC_WEBHOOK_BATCH": str(args.batch),
               "CALSYNC_WEBHOOK_REUSE_PORT": "1" if args.processes > 1 else "0"}  # fmt: skip
        log_path = tmp / f"receiver-{i}.log"
        proc = subprocess.Popen([sys.executable, "-m", "worker", "webhooks"], cwd=ROOT, env=env,
                                stdout=log_path.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(proc)
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r'"event": "webhooks_listening".*"port": (\d+)', log_path.read_text(errors="replace"))
            if m:
                port = m.group(1)
                break
            if proc.poll() is not None:
                raise SystemExit(f"the receiver exited: {log_path.read_text()}")
            if time.monotonic() > deadline:
                raise SystemExit("the receiver did not start")
            time.sleep(0.05)
    return procs, f"http://127.0.0.1:{port}/webhooks/calcom"


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
    ap.add_argument("--app-clients", type=int, default=None,
                    help="pgbench clients booking meanwhile (default 8 throttled: the app's requests do not wait "
                    "for each other; 2 unthrottled, as before)")  # fmt: skip
    ap.add_argument("--app-rate", type=float, default=200.0,
                    help="the app's booking load, transactions/s (pgbench -R); 0: unthrottled (see above)")  # fmt: skip
    ap.add_argument("--baseline-seconds", type=int, default=10)
    ap.add_argument("--pool", type=int, default=WebhookSettings.pool_size,
                    help="the receiver's database connections (each process; default: the receiver's own)")  # fmt: skip
    ap.add_argument("--batch", type=int, default=64, help="CALSYNC_WEBHOOK_BATCH: deliveries at most per call")
    ap.add_argument("--processes", type=int, default=1, help="receiver processes on one port (SO_REUSEPORT)")
    ap.add_argument("--no-analyze", action="store_true",
                    help="skip the ANALYZE after the warm-up (the tables' statistics then say empty until "
                    "autovacuum comes by)")  # fmt: skip
    ap.add_argument("--sample-s", type=float, default=0.05,
                    help="how often the latency phases sample the sessions' waits (the disk's flush: twice that); "
                         "the samplers share the cores and the disk with what they watch (every 10 ms cost the "
                         "receiver its p99)")  # fmt: skip
    ap.add_argument("--track-all", action="store_true",
                    help="profile: pg_stat_statements of the statements inside the receiver's functions too")  # fmt: skip
    ap.add_argument("--sender", choices=("raw", "aiohttp"), default="raw",
                    help="the load generator: raw (pre-built requests on asyncio connections, a few us of CPU per "
                    "delivery) or aiohttp's client (as until 2026-12-02); both time from send to the whole answer")  # fmt: skip
    args = ap.parse_args()
    if args.app_clients is None:
        args.app_clients = 8 if args.app_rate > 0 else 2
    with (
        scratch_database("webhooks", keep=bool(os.environ.get("CALSYNC_BENCH_KEEP"))) as url,
        tempfile.TemporaryDirectory() as tmp_dir,
    ):
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
        with psycopg.connect(url, autocommit=True) as conn:  # the setup's writes are not the measurement's
            conn.execute("CHECKPOINT")
        load_avg = os.getloadavg()
        print(f"load average at the start: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}; "
              f"app booking load {AppLoad.describe_rate(args.app_rate, args.app_clients)}", flush=True)  # fmt: skip
        alone = AppLoad(url, scripts, args.app_clients, args.app_rate)
        t0 = time.time()
        time.sleep(args.baseline_seconds)
        baseline = alone.window(t0, time.time())
        alone.stop()
        if baseline is None or alone.failure():
            raise SystemExit(f"the app's load alone did not run: {alone.failure() or 'no progress lines'}")
        print(f"app booking load alone: {baseline.tps:.0f} tps, mean latency {baseline.latency_ms:.1f} ms",
              flush=True)  # fmt: skip
        if args.track_all:  # before the receiver connects: the setting is read when a session starts
            statements_reset(url, True)
        receivers, hook_url = start_receivers(url, args, tmp)
        with psycopg.connect(url, autocommit=True) as conn:  # the flush probe writes beside the server's data
            server_dir = Path(str(conn.execute("SHOW data_directory").fetchone()[0])).parent  # type: ignore[index]
        data_dir = server_dir if server_dir.is_dir() else tmp

        def receiver_cpu() -> float:
            return sum(cpu_seconds(r.pid) for r in receivers)

        phases: list[tuple[str, float, float]] = []
        try:
            closed, opened = (
                (closed_loop, open_loop) if args.sender == "raw" else (aiohttp_closed_loop, aiohttp_open_loop)
            )
            asyncio.run(closed(hook_url, [gen.next() for _ in range(500)], 8))  # warm-up: connections, plans
            if not args.no_analyze:  # statistics of tables that are no longer empty, as a live database has
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("ANALYZE")
            app = AppLoad(url, scripts, args.app_clients, args.app_rate)
            time.sleep(1.5)
            try:
                statements_reset(url)
                backends = [b for r in receivers for b in receiver_backends(url, r.pid)]
                db0 = sum(cpu_seconds(b) for b in backends)
                cpu0, own0, w0 = receiver_cpu(), time.process_time(), time.time()
                seconds, lat, st = asyncio.run(closed(hook_url, throughput_bodies, args.concurrency))
                phases.append(("throughput", w0, time.time()))
                own = time.process_time() - own0
                rate = report(f"throughput ({args.concurrency} connections)", seconds, lat, st)
                cpu = receiver_cpu() - cpu0
                print(f"  the receiver ({args.processes} process(es)) used {cpu:.1f} CPU s: {cpu / len(lat) * 1e6:.0f} us per delivery, "
                      f"{cpu / seconds:.2f} of a core; the sender ({args.sender}) {own / len(lat) * 1e6:.0f} us "
                      f"per delivery; load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
                db_cpu = sum(cpu_seconds(b) for b in backends) - db0
                print(f"  the receiver's {len(backends)} database sessions used {db_cpu:.1f} CPU s: "
                      f"{db_cpu / len(lat) * 1e6:.0f} us per delivery", flush=True)  # fmt: skip
                statements_report(url, len(lat), args.track_all)
                p99s = {}
                for r, bodies in zip(rates, latency_bodies, strict=True):
                    statements_reset(url)
                    db0 = sum(cpu_seconds(b) for b in backends)
                    lsn0, waits, flushes = (
                        wal_lsn(url),
                        WaitSampler(url, args.sample_s),
                        FlushProbe(data_dir, 2 * args.sample_s),
                    )
                    cpu0, own0, w0 = receiver_cpu(), time.process_time(), time.time()
                    seconds, lat, st = asyncio.run(opened(hook_url, bodies, r))
                    phases.append((f"latency at {r:,.0f}/s", w0, time.time()))
                    own, cpu = time.process_time() - own0, receiver_cpu() - cpu0
                    db_cpu = sum(cpu_seconds(b) for b in backends) - db0
                    waited, flushed, wal = waits.stop(), flushes.stop(), wal_since(url, lsn0)
                    report(f"latency at {r:,.0f}/s offered", seconds, lat, st)
                    if slow := Counter(int(i / r) for i, x in enumerate(lat) if x > 0.05):  # lat: schedule order
                        print(f"  answers over 50 ms by second of the schedule (from {time.strftime('%H:%M:%S', time.localtime(w0))}): "
                              + ", ".join(f"{k}s: {v}" for k, v in sorted(slow.items())), flush=True)  # fmt: skip
                    print(f"  receiver {cpu / len(lat) * 1e6:.0f} us per delivery ({cpu / seconds:.2f} of a core), "
                          f"its database sessions {db_cpu / len(lat) * 1e6:.0f} us, sender {own / len(lat) * 1e6:.0f} "
                          f"us; load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
                    print(f"  the database (receiver and app): {wal / seconds / 1e6:.1f} MB of WAL a second; {waited}; "
                          f"{flushed}", flush=True)  # fmt: skip
                    print(f"  {autovacuum_since(url, w0)}", flush=True)
                    statements_report(url, len(lat))
                    p99s[r] = percentile([x * 1000 for x in lat], 99)
                p99 = p99s[rates[0]]
                app_failed = app.failure()
            finally:
                app.stop()
        finally:
            for r in receivers:
                r.terminate()
            for r in receivers:
                r.wait(20)
        logged = Counter(
            f"{m[1]}{' ' + m[2] if m[2] else ''}"
            for log in tmp.glob("receiver-*.log")
            for m in re.finditer(r'"event": "(\w+)"(?:.*?"sqlstate": "(\w+)")?', log.read_text())
            if m[1] != "webhook_received"
        )
        print(f"receiver log, other than webhook_received: {dict(logged)}")
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
        target = f"target {args.app_rate:g} tps" if args.app_rate > 0 else f"alone {baseline.tps:.0f} tps"
        for name, w0, w1 in phases:
            f = app.window(w0, w1)
            if f is None:
                print(f"app booking load during {name}: no whole second of pgbench progress")
                continue
            ratio = f.tps / (args.app_rate if args.app_rate > 0 else baseline.tps)
            print(
                f"app booking load during {name}: {f.tps:.0f} tps ({target}: {ratio:.2f}x), mean latency "
                f"{f.latency_ms:.1f} ms (alone {baseline.latency_ms:.1f} ms), {f.failed} failed, {f.seconds} s"
            )
        if app_failed:
            print(f"app booking load: {app_failed}")
        met = rate >= 1000 and p99 <= 50
        print(f"goal: >= 1,000 deliveries/s ({rate:,.0f}) and p99 <= 50 ms at {rates[0]:,.0f}/s ({p99:.1f}): "
              f"{'met' if met else 'missed'}; p99 by offered rate: {', '.join(f'{r:,.0f}/s {v:.1f} ms' for r, v in p99s.items())}")  # fmt: skip


if __name__ == "__main__":
    main()
