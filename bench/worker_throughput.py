"""Outbox worker against PgQueuer: drain throughput and database cost per delivered event, in the same run.

Both sides book ``--events`` appointments at the same Cal.com simulator process (zero latency, no rate limit,
bookings reset between runs) on the same PostgreSQL server, each in a fresh database at head:
- ours: the appointments are inserted with the worker stopped (the triggers fill calsync.outbox), then
  ``Worker(once=True)`` is timed until it has drained them, at each ``--settings`` concurrency x batch;
- PgQueuer (asyncpg driver if installed, else psycopg; ``QueueManager.run(mode=drain)``, at most 2 x batch
  jobs in flight, the least it allows) at each ``--pgq-batches``: one job per appointment whose entrypoint
  POSTs /v2/bookings with the same body through one shared httpx.AsyncClient (pool ``--pgq-pool``) and
  records the uid on the appointment with one UPDATE (a pool of 4 connections, like the worker's).
Every run checks that all appointments are synced and the simulator holds exactly that many bookings.
Database cost: pg_stat_statements (reset for that database only; pg_stat_statements.track as the server has
it, 'top' by default: the statements the client sent, not the ones inside our plpgsql functions) and the
WAL written (pg_current_wal_lsn before/after, server-wide: one side at a time; other databases' commits
during the run are shown), and commits (pg_stat_database.xact_commit), per event. pg_walinspect splits the
WAL by relation for the last run of each side's best setting. Each side's time includes its connecting.
Goals: events/s >= 1.5x PgQueuer's; statements and WAL bytes per event <= 0.5x PgQueuer's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from _common import median, scratch_database, server_url

from worker import logs
from worker.devtools import simsetup
from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.ops import migrate
from worker.sync.calcom import iso
from worker.sync.drain import Worker
from worker.sync.settings import WorkerSettings

API_KEY = "cal_test_calsync"
SALON = """
WITH c AS (INSERT INTO companies (name) VALUES ('Bench salon') RETURNING id),
st AS (INSERT INTO staff (company_id, name, email) SELECT id, 'Lena Wagner', 'lena.wagner@salon.example' FROM c RETURNING id),
sv AS (INSERT INTO services (company_id, name, duration_minutes, calcom_event_type_id)
       SELECT id, 'Herrenhaarschnitt', 30, 8001 FROM c RETURNING id),
cu AS (INSERT INTO customers (company_id, name, email, phone)
       SELECT id, 'Hans Schuster', 'hans.schuster@mail.example', '+4915112345678' FROM c RETURNING id)
SELECT c.id, st.id, sv.id, cu.id FROM c, st, sv, cu
"""
# appointment i of the salon: a live 30-minute slot of its own, tomorrow + i * 30 min
BOOK = """
INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, ends_at, status, source)
SELECT s.company_id, s.customer_id, s.service_id, s.staff_id, t, t + interval '30 minutes', 'confirmed', 'bench'
FROM bench_salon s, generate_series(%(first)s::int, %(first)s::int + %(n)s::int - 1) AS i,
     LATERAL (SELECT date_trunc('hour', now()) + interval '1 day' + i * interval '30 minutes' AS t) AS x
RETURNING id
"""


def make_salon(url: str) -> None:
    """Migrate to head; a salon with one staff, one 30-minute service (event type 8001) and one customer."""
    migrate.upgrade(url, "heads")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        row = conn.execute(SALON).fetchone()
        assert row is not None
        conn.execute("CREATE TABLE bench_salon (company_id bigint, staff_id uuid, service_id bigint, customer_id bigint)")  # fmt: skip
        conn.execute("INSERT INTO bench_salon VALUES (%s, %s, %s, %s)", row)


def book(conn: psycopg.Connection[Any], first: int, n: int = 1) -> list[int]:
    return [int(r[0]) for r in conn.execute(BOOK, {"first": first, "n": n}).fetchall()]


class DbCost:
    """Statements and WAL of one database between start() and stop(), read from an admin connection."""

    def __init__(self, url: str) -> None:
        self.admin = psycopg.connect(server_url() + "/postgres", autocommit=True)
        self.db = psycopg.connect(url, autocommit=True)  # pg_stat_statements' functions live in the database
        self.dbname = url.rsplit("/", 1)[1]

    def _xacts(self) -> tuple[int, int]:
        """Commits in this database and in the others (but postgres, where this admin connection is)."""
        q = "SELECT sum(xact_commit) FILTER (WHERE datname = %s), sum(xact_commit) FILTER (WHERE datname <> %s) "
        row = self.admin.execute(q + "FROM pg_stat_database WHERE datname <> 'postgres'", [self.dbname] * 2).fetchone()
        return int(row[0] or 0), int(row[1] or 0)  # type: ignore[index]

    def start(self) -> None:
        self.admin.execute("CHECKPOINT")
        self.db.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
        )
        self.lsn = self.admin.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
        self.xacts = self._xacts()

    def stop(self) -> dict[str, Any]:
        wal, end = self.admin.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint, pg_current_wal_lsn()::text", [self.lsn]
        ).fetchone()  # type: ignore[misc]
        time.sleep(0.5)  # a backend's counts reach pg_stat_database when it exits (the clients closed theirs)
        xacts, others = (b - a for a, b in zip(self.xacts, self._xacts(), strict=True))
        top = self.db.execute(
            "SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT LIKE '%%pg_stat_statements%%' ORDER BY calls DESC"
        ).fetchall()
        track = self.db.execute("SHOW pg_stat_statements.track").fetchone()[0]  # type: ignore[index]
        self.admin.close()
        self.db.close()
        stmts = sum(c for c, _, _ in top)
        return dict(
            statements=stmts, xacts=xacts, top=top, wal=int(wal), end=end, start=self.lsn, track=track, others=others
        )


# WAL records of this database's relations (and those of none: commits, checkpoints), by relation
WAL_BY_RELATION = r"""
WITH r AS (SELECT record_length, fpi_length, resource_manager, record_type,
                  substring(block_ref FROM 'rel \d+/\d+/(\d+)')::oid AS fn, substring(block_ref FROM 'rel \d+/(\d+)/')::oid AS db
           FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn))
SELECT coalesce(CASE WHEN c.relnamespace = 'pg_toast'::regnamespace
                     THEN substring(c.relname FROM 'pg_toast_(\d+)')::oid::regclass::text || ' (toast)'
                     ELSE c.relname END, r.resource_manager || ' ' || split_part(r.record_type, ' ', 1)) AS what,
       sum(record_length)::bigint, sum(fpi_length)::bigint
FROM r LEFT JOIN pg_class c ON c.relfilenode = r.fn AND r.fn <> 0
WHERE r.db IS NULL OR r.db IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
GROUP BY 1 ORDER BY 2 DESC
"""


def wal_by_relation(url: str, cost: dict[str, Any]) -> list[tuple[str, int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        try:
            return conn.execute(WAL_BY_RELATION, [cost["start"], cost["end"]]).fetchall()
        except psycopg.errors.UndefinedFile:  # a checkpoint (someone's) recycled it meanwhile
            return [("(WAL already recycled)", 0, 0)]


def verify(url: str, sim: SimulatorProcess, n: int) -> None:
    with psycopg.connect(url) as conn:
        synced = conn.execute(
            "SELECT count(*) FROM appointments WHERE calcom_sync_status = 'synced' AND calcom_v2_booking_uid IS NOT NULL"
        ).fetchone()[0]  # type: ignore[index]
    stored = sim.stats()["bookingsStored"]
    if synced != n or stored != n:
        raise SystemExit(f"run incomplete: {synced} of {n} appointments synced, {stored} bookings at the simulator")


def timed(url: str, sim: SimulatorProcess, n: int, drain: Callable[[], str]) -> dict[str, Any]:
    """Time drain() (which sets up its own connections and HTTP client) and measure what it cost the database."""
    simsetup.register(url, sim.base_url)
    sim.reset()
    cost = DbCost(url)
    cost.start()
    t0 = time.perf_counter()
    label = drain()
    took = time.perf_counter() - t0
    result = cost.stop()
    verify(url, sim, n)
    return {**result, "wal_by_relation": wal_by_relation(url, result), "eps": n / took, "took": took, "driver": label}


def run_ours(sim: SimulatorProcess, n: int, concurrency: int, batch: int) -> dict[str, Any]:
    with scratch_database("wt_ours") as url:
        make_salon(url)
        with psycopg.connect(url, autocommit=True) as conn:
            book(conn, 0, n)
            conn.execute("VACUUM ANALYZE")
        settings = WorkerSettings(database_url=url, api_key=API_KEY, base_url=sim.base_url, once=True, concurrency=concurrency,
                                  key_concurrency=concurrency,  # one key: its cap is the whole concurrency
                                  batch_size=batch, rate_limit=10_000_000, rate_window_s=60, poll_interval_s=0.5)  # fmt: skip
        return timed(url, sim, n, lambda: str(asyncio.run(Worker(settings).run())))


async def pgq_driver(url: str) -> Any:
    """PgQueuer's asyncpg driver when asyncpg is installed, else its psycopg driver (which holds the connection's
    lock while it waits up to 1 s for a NOTIFY, so its queries queue behind that wait)."""
    from pgqueuer import PsycopgDriver

    try:
        import asyncpg  # type: ignore[import-untyped]
        from pgqueuer import AsyncpgDriver

        conn: Any = await asyncpg.connect(url)
        return AsyncpgDriver(conn), conn
    except ImportError:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        return PsycopgDriver(conn), conn


async def pgq_drain(url: str, base_url: str, batch: int, connections: int) -> str:
    from pgqueuer import Queries, QueueManager
    from pgqueuer.models import Job
    from pgqueuer.types import QueueExecutionMode
    from psycopg_pool import AsyncConnectionPool

    driver, conn = await pgq_driver(url)
    pool = AsyncConnectionPool(url, min_size=4, max_size=4, kwargs={"autocommit": True}, open=False)
    await pool.open(wait=True)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {API_KEY}", "cal-api-version": "2024-08-13"}
    client = httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=15)
    qm = QueueManager(Queries(driver))

    @qm.entrypoint("sync")
    async def sync(job: Job) -> None:
        assert job.payload is not None
        job_data = json.loads(job.payload)
        r = await client.post("/v2/bookings", json=job_data["body"])
        r.raise_for_status()
        uid = r.json()["data"]["uid"]
        async with pool.connection() as c:
            await c.execute(
                "UPDATE appointments SET calcom_v2_booking_uid = %s, calcom_sync_status = 'synced' WHERE id = %s",
                (uid, job_data["id"]),
            )

    # at most 2 x batch in flight, the least run() allows: unbounded, every picked job waits in httpx's pool,
    # whose scan of waiting requests made PgQueuer 2-3x slower here
    await qm.run(batch_size=batch, mode=QueueExecutionMode.drain, max_concurrent_tasks=2 * batch)
    await client.aclose()
    await pool.close()
    await conn.close()
    return type(driver).__name__


async def pgq_prepare(url: str, n: int) -> None:
    from pgqueuer import PsycopgDriver, Queries

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        q = Queries(PsycopgDriver(conn))
        await q.install()
        await conn.execute("SET calsync.writer = 'worker'")  # the baseline has no outbox: no triggers enqueue
        cur = await conn.execute(BOOK, {"first": 0, "n": n})
        ids = [int(r[0]) for r in await cur.fetchall()]
        await conn.execute("TRUNCATE calsync.outbox")
        cur = await conn.execute("SELECT id, starts_at FROM appointments WHERE id = ANY(%s) ORDER BY id", [ids])
        payloads: list[bytes | None] = []
        for aid, start in await cur.fetchall():
            person = {"name": "Hans Schuster", "timeZone": "Europe/Berlin", "email": "hans.schuster@mail.example",
                      "phoneNumber": "+4915112345678"}  # fmt: skip
            body = {"start": iso(start), "eventTypeId": 8001, "attendee": person,
                    "bookingFieldsResponses": {"title": "Herrenhaarschnitt"}, "metadata": {"calsync_appointment_id": str(aid)}}  # fmt: skip
            payloads.append(json.dumps({"id": aid, "body": body}).encode())
        for i in range(0, n, 1000):
            chunk = payloads[i : i + 1000]
            await q.enqueue(["sync"] * len(chunk), chunk, [0] * len(chunk))
        await conn.execute("VACUUM ANALYZE")


def run_pgq(sim: SimulatorProcess, n: int, batch: int, connections: int) -> dict[str, Any]:
    with scratch_database("wt_pgq") as url:
        make_salon(url)
        asyncio.run(pgq_prepare(url, n))
        return timed(url, sim, n, lambda: asyncio.run(pgq_drain(url, sim.base_url, batch, connections)))


def wal_split(r: dict[str, Any]) -> dict[str, int]:
    """WAL by what wrote it: the appointment update both sides make (the table and its indexes), our archive of
    each exchange (calsync.sync_attempts, its indexes and TOAST), and the rest: the queue itself and commits."""
    split = {"appointment update": 0, "archive": 0, "queue and commits": 0}
    for what, size, _ in r["wal_by_relation"]:
        if what.startswith(("appointment", "remediation_appointments")):
            split["appointment update"] += size
        elif what.startswith(("sync_attempts", "calsync.sync_attempts")):
            split["archive"] += size
        else:
            split["queue and commits"] += size
    return split


def show_cost(name: str, r: dict[str, Any], n: int) -> None:
    print(
        f"\n{name}: {r['statements'] / n:.3f} statements/event, {r['wal'] / n:,.0f} WAL bytes/event "
        f"(other databases committed {r['others']} transactions meanwhile)"
    )
    for calls, ms, q in r["top"][:5]:
        print(f"  {calls:7d} calls {ms / calls:7.2f} ms each  {q}")
    print(
        f"  WAL of this database's relations and of none (pg_walinspect): {sum(x[1] for x in r['wal_by_relation']) / n:,.0f} B/event"
    )
    for what, size, fpi in r["wal_by_relation"][:7]:
        print(f"  {size / n:9,.0f} B/event ({fpi / max(size, 1):4.0%} full-page images)  {what}")
    print("  by what wrote it: " + ", ".join(f"{k} {v / n:,.0f} B/event" for k, v in wal_split(r).items()))


def main() -> None:
    if importlib.util.find_spec("pgqueuer") is None:
        raise SystemExit("PgQueuer, the comparison, is not installed: `uv sync --group bench` (make bench does it)")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument(
        "--settings", default="16x64,32x64,64x128", help="our worker's concurrency x batch, comma-separated"
    )
    ap.add_argument("--pgq-batches", default="10,100")
    ap.add_argument("--pgq-pool", type=int, default=16, help="PgQueuer's httpx pool (ours: its concurrency)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of every setting, alternating the sides")
    args = ap.parse_args()
    n = args.events
    logs.set_stream(open(os.devnull, "w"))  # noqa: SIM115 - the worker's JSON lines: written, not shown
    plan = [("ours", int(c), int(b)) for c, b in (s.split("x") for s in args.settings.split(","))]
    plan += [("pgqueuer", args.pgq_pool, int(b)) for b in args.pgq_batches.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {}
    with SimulatorProcess(SimulatorConfig(api_keys=(API_KEY,), rate_limit=10_000_000, latency_ms=(0.0, 0.0))) as sim:
        for rnd in range(args.rounds):
            for side, c, b in plan:
                r = run_ours(sim, n, c, b) if side == "ours" else run_pgq(sim, n, b, c)
                key = f"ours c={c} batch={b}" if side == "ours" else f"pgqueuer batch={b}"
                runs.setdefault(key, []).append(r)
                print(f"round {rnd + 1}  {key:24} {r['eps']:8.1f} events/s  ({r['took']:.1f} s)", flush=True)
    rows = {k: [median([r[f] / (1 if f == "eps" else n) for r in v]) for f in ("eps", "statements", "wal", "xacts")]
            for k, v in runs.items()}  # fmt: skip
    pgq_keys = [k for k in rows if k.startswith("pgq")]
    ours = max((k for k in rows if k.startswith("ours")), key=lambda k: rows[k][0])
    pgq = max(pgq_keys, key=lambda k: rows[k][0])
    show_cost(f"ours ({ours}, last round)", runs[ours][-1], n)
    show_cost(f"PgQueuer ({pgq}, last round)", runs[pgq][-1], n)
    print(f"\n{n:,} events, simulator at zero latency, medians of {args.rounds} round(s); PgQueuer {runs[pgq][0]['driver']}, "
          f"httpx pool {args.pgq_pool}; pg_stat_statements.track = {runs[ours][0]['track']} (client statements); commits: "
          f"pg_stat_database.xact_commit (also counts empty queries, e.g. psycopg_pool's connection check)")  # fmt: skip
    print(f"  {'setting':26} {'events/s':>9} {'stmts/event':>12} {'WAL B/event':>12} {'commits/event':>14}")
    for k, (eps, st, wal, xa) in rows.items():
        print(f"  {k:26} {eps:9.1f} {st:12.3f} {wal:12,.0f} {xa:14.3f}")
    print(f"\nbest ours ({ours}) against PgQueuer:      throughput   statements/event   WAL bytes/event")
    for k in pgq_keys:
        o, p = rows[ours], rows[k]
        print(f"  {k:32} {o[0] / p[0]:10.2f}x {o[1] / p[1]:17.2f}x {o[2] / p[2]:16.2f}x")
    o, p = rows[ours], rows[pgq]
    met = o[0] / p[0] >= 1.5 and o[1] / p[1] <= 0.5 and o[2] / p[2] <= 0.5
    so, sp = wal_split(runs[ours][-1]), wal_split(runs[pgq][-1])
    print(f"WAL split, last rounds (B/event, ours vs {pgq}): the appointment update both make "
          f"{so['appointment update'] / n:,.0f} vs {sp['appointment update'] / n:,.0f}; everything else "
          f"{(so['archive'] + so['queue and commits']) / n:,.0f} vs {sp['queue and commits'] / n:,.0f}, of which our "
          f"archive of every exchange (which PgQueuer doesn't keep) {so['archive'] / n:,.0f}; the queue without it "
          f"{so['queue and commits'] / n:,.0f} vs {sp['queue and commits'] / n:,.0f} "
          f"({so['queue and commits'] / max(sp['queue and commits'], 1):.2f}x)")  # fmt: skip
    print(f"goal: >= 1.5x the best PgQueuer's events/s ({o[0] / p[0]:.2f}x), <= 0.5x its statements ({o[1] / p[1]:.2f}x) "
          f"and WAL ({o[2] / p[2]:.2f}x) per event: {'met' if met else 'missed'}")  # fmt: skip


if __name__ == "__main__":
    main()
