"""Outbox worker against PgQueuer: drain throughput and database cost per delivered event, in the same run.

Both sides book ``--events`` appointments at the same Cal.com simulator process (zero latency, no rate limit,
bookings reset between runs) on the same PostgreSQL server, each in a fresh database at head:
- ours: the appointments are inserted with the worker stopped (the triggers fill calsync.outbox), then
  ``Worker(once=True)`` is timed until it has drained them, at each ``--settings`` concurrency x batch;
- PgQueuer (psycopg driver, ``QueueManager.run(mode=drain)``) at each ``--pgq-batches``: one job per
  appointment whose entrypoint POSTs /v2/bookings with the same body through one shared httpx.AsyncClient
  (pool = our best concurrency) and records the uid on the appointment with one UPDATE.
Every run checks that all appointments are synced and the simulator holds exactly that many bookings.
Database cost: pg_stat_statements (reset for that database only; pg_stat_statements.track as the server has
it, 'top' by default: the statements the client sent, not the ones inside our plpgsql functions) and the
WAL written (pg_current_wal_lsn before/after, server-wide: one side at a time; other databases' commits
during the run are shown), per event. pg_walinspect splits the WAL by relation for the best run of each side.
Goals: events/s >= 1.5x PgQueuer's; statements and WAL bytes per event <= 0.5x PgQueuer's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import psycopg
from _common import median, scratch_database, server_url

from worker import migrate, simsetup
from worker.calcom import iso
from worker.outbox import Worker
from worker.settings import WorkerSettings
from worker.simulator import SimulatorConfig, SimulatorProcess

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
        conn.execute(
            "CREATE TABLE bench_salon (company_id bigint, staff_id uuid, service_id bigint, customer_id bigint)"
        )
        conn.execute("INSERT INTO bench_salon VALUES (%s, %s, %s, %s)", row)


def book(conn: psycopg.Connection[Any], first: int, n: int = 1) -> list[int]:
    return [int(r[0]) for r in conn.execute(BOOK, {"first": first, "n": n}).fetchall()]


class DbCost:
    """Statements and WAL of one database between start() and stop(), read from an admin connection."""

    def __init__(self, url: str) -> None:
        self.admin = psycopg.connect(server_url() + "/postgres", autocommit=True)
        self.db = psycopg.connect(url, autocommit=True)  # pg_stat_statements' functions live in the database
        self.dbname = url.rsplit("/", 1)[1]

    def _others(self) -> int:
        q = "SELECT sum(xact_commit)::bigint FROM pg_stat_database WHERE datname NOT IN (%s, 'postgres')"
        return int(self.admin.execute(q, [self.dbname]).fetchone()[0] or 0)  # type: ignore[index]

    def start(self) -> None:
        self.admin.execute("CHECKPOINT")
        self.db.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
        )
        self.lsn = self.admin.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]
        self.others = self._others()

    def stop(self) -> dict[str, Any]:
        wal, end = self.admin.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint, pg_current_wal_lsn()::text", [self.lsn]
        ).fetchone()  # type: ignore[misc]
        others = self._others() - self.others
        top = self.db.execute(
            "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query NOT LIKE '%%pg_stat_statements%%' ORDER BY calls DESC"
        ).fetchall()
        track = self.db.execute("SHOW pg_stat_statements.track").fetchone()[0]  # type: ignore[index]
        self.admin.close()
        self.db.close()
        return {
            "statements": sum(c for c, _ in top),
            "top": top,
            "wal": int(wal),
            "end": end,
            "start": self.lsn,
            "track": track,
            "others": others,
        }


WAL_BY_RELATION = r"""
WITH r AS (SELECT record_length, fpi_length, resource_manager, record_type,
                  substring(block_ref FROM 'rel \d+/\d+/(\d+)')::oid AS fn
           FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn))
SELECT coalesce(CASE WHEN c.relnamespace = 'pg_toast'::regnamespace
                     THEN substring(c.relname FROM 'pg_toast_(\d+)')::oid::regclass::text || ' (toast)'
                     ELSE c.relname END, r.resource_manager || ' ' || split_part(r.record_type, ' ', 1)) AS what,
       sum(record_length)::bigint, sum(fpi_length)::bigint
FROM r LEFT JOIN pg_class c ON c.relfilenode = r.fn AND r.fn <> 0
GROUP BY 1 ORDER BY 2 DESC LIMIT 7
"""


def wal_by_relation(url: str, cost: dict[str, Any]) -> list[tuple[str, int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        return conn.execute(WAL_BY_RELATION, [cost["start"], cost["end"]]).fetchall()  # type: ignore[return-value]


def verify(url: str, sim: SimulatorProcess, n: int) -> None:
    with psycopg.connect(url) as conn:
        synced = conn.execute(
            "SELECT count(*) FROM appointments WHERE calcom_sync_status = 'synced' AND calcom_v2_booking_uid IS NOT NULL"
        ).fetchone()[0]  # type: ignore[index]
    stored = sim.stats()["bookingsStored"]
    if synced != n or stored != n:
        raise SystemExit(f"run incomplete: {synced} of {n} appointments synced, {stored} bookings at the simulator")


def run_ours(sim: SimulatorProcess, n: int, concurrency: int, batch: int) -> dict[str, Any]:
    with scratch_database("wt_ours") as url:
        make_salon(url)
        with psycopg.connect(url, autocommit=True) as conn:
            book(conn, 0, n)
            conn.execute("VACUUM ANALYZE")
        simsetup.register(url, sim.base_url)
        sim.reset()
        settings = WorkerSettings(
            database_url=url,
            api_key=API_KEY,
            base_url=sim.base_url,
            once=True,
            concurrency=concurrency,
            batch_size=batch,
            rate_limit=10_000_000,
            rate_window_s=60,
            poll_interval_s=0.5,
        )
        cost = DbCost(url)
        cost.start()
        t0 = time.perf_counter()
        asyncio.run(Worker(settings).run())
        took = time.perf_counter() - t0
        result = cost.stop()
        verify(url, sim, n)
        result["wal_by_relation"] = wal_by_relation(url, result)
    return {**result, "eps": n / took, "took": took}


async def pgq_driver(url: str) -> Any:
    """PgQueuer's asyncpg driver when asyncpg is installed, else its psycopg driver (which holds the connection's
    lock while it waits up to 1 s for a NOTIFY, so its queries queue behind that wait)."""
    from pgqueuer import PsycopgDriver

    try:
        import asyncpg
        from pgqueuer import AsyncpgDriver

        conn: Any = await asyncpg.connect(url)
        return AsyncpgDriver(conn), conn
    except ImportError:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        return PsycopgDriver(conn), conn


async def pgq_drain(url: str, base_url: str, batch: int, connections: int, inflight: int | None) -> float:
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

    t0 = time.perf_counter()
    await qm.run(batch_size=batch, mode=QueueExecutionMode.drain, max_concurrent_tasks=inflight)
    took = time.perf_counter() - t0
    await client.aclose()
    await pool.close()
    await conn.close()
    return took


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
        payloads = []
        for aid, start in await cur.fetchall():
            body = {
                "start": iso(start),
                "eventTypeId": 8001,
                "attendee": {
                    "name": "Hans Schuster",
                    "timeZone": "Europe/Berlin",
                    "email": "hans.schuster@mail.example",
                    "phoneNumber": "+4915112345678",
                },
                "bookingFieldsResponses": {"title": "Herrenhaarschnitt"},
                "metadata": {"calsync_appointment_id": str(aid)},
            }
            payloads.append(json.dumps({"id": aid, "body": body}).encode())
        for i in range(0, n, 1000):
            chunk = payloads[i : i + 1000]
            await q.enqueue(["sync"] * len(chunk), chunk, [0] * len(chunk))
        await conn.execute("VACUUM ANALYZE")


def run_pgq(sim: SimulatorProcess, n: int, batch: int, connections: int) -> dict[str, Any]:
    with scratch_database("wt_pgq") as url:
        make_salon(url)
        asyncio.run(pgq_prepare(url, n))
        simsetup.register(url, sim.base_url)
        sim.reset()
        cost = DbCost(url)
        cost.start()
        took = asyncio.run(pgq_drain(url, sim.base_url, batch, connections))
        result = cost.stop()
        verify(url, sim, n)
        result["wal_by_relation"] = wal_by_relation(url, result)
    return {**result, "eps": n / took, "took": took}


def show_cost(name: str, r: dict[str, Any], n: int) -> None:
    print(
        f"\n{name}: {r['statements'] / n:.3f} statements/event, {r['wal'] / n:,.0f} WAL bytes/event "
        f"(other databases committed {r['others']} transactions meanwhile)"
    )
    for calls, q in r["top"][:5]:
        print(f"  {calls:7d} calls  {q}")
    print("  WAL by relation:")
    for what, size, fpi in r["wal_by_relation"]:
        print(f"  {size / n:9,.0f} B/event ({fpi / max(size, 1):4.0%} full-page images)  {what}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--settings", default="32x64,64x64", help="our worker's concurrency x batch, comma-separated")
    ap.add_argument("--pgq-batches", default="10,100")
    ap.add_argument("--rounds", type=int, default=2, help="runs of every setting, alternating the sides")
    args = ap.parse_args()
    n = args.events
    ours_settings = [tuple(int(x) for x in s.split("x")) for s in args.settings.split(",")]
    pgq_batches = [int(b) for b in args.pgq_batches.split(",")]
    connections = max(c for c, _ in ours_settings)
    runs: dict[str, list[dict[str, Any]]] = {}
    config = SimulatorConfig(api_keys=(API_KEY,), rate_limit=10_000_000, latency_ms=(0.0, 0.0))
    with SimulatorProcess(config) as sim:
        for rnd in range(args.rounds):
            for c, b in ours_settings:
                r = run_ours(sim, n, c, b)
                runs.setdefault(f"ours c={c} batch={b}", []).append(r)
                print(
                    f"round {rnd + 1}  ours     c={c:<3} batch={b:<4} {r['eps']:8.1f} events/s  ({r['took']:.1f} s)",
                    flush=True,
                )
            for b in pgq_batches:
                r = run_pgq(sim, n, b, connections)
                runs.setdefault(f"pgqueuer batch={b}", []).append(r)
                print(
                    f"round {rnd + 1}  pgqueuer batch={b:<4}       {r['eps']:8.1f} events/s  ({r['took']:.1f} s)",
                    flush=True,
                )
    rows = {
        k: (median([r["eps"] for r in v]), median([r["statements"] / n for r in v]), median([r["wal"] / n for r in v]))
        for k, v in runs.items()
    }
    print(
        f"\n{n:,} events, simulator at zero latency, medians of {args.rounds} round(s); "
        f"PgQueuer: psycopg driver, drain mode, httpx pool {connections}; pg_stat_statements.track = "
        f"{runs[next(iter(runs))][0]['track']}"
    )
    print(f"  {'setting':28} {'events/s':>9} {'stmts/event':>12} {'WAL B/event':>12}")
    for k, (eps, st, wal) in rows.items():
        print(f"  {k:28} {eps:9.1f} {st:12.3f} {wal:12,.0f}")
    ours = max((k for k in rows if k.startswith("ours")), key=lambda k: rows[k][0])
    pgq = max((k for k in rows if k.startswith("pgq")), key=lambda k: rows[k][0])
    (oe, os_, ow), (pe, ps, pw) = rows[ours], rows[pgq]
    show_cost(f"ours ({ours}, last round)", runs[ours][-1], n)
    show_cost(f"PgQueuer ({pgq}, last round)", runs[pgq][-1], n)
    print(f"\nbest ours ({ours}) against best PgQueuer ({pgq}):")
    print(f"  throughput        {oe / pe:5.2f}x   (goal >= 1.5x)")
    print(f"  statements/event  {os_ / ps:5.2f}x   (goal <= 0.5x)")
    print(f"  WAL bytes/event   {ow / pw:5.2f}x   (goal <= 0.5x)")
    met = oe / pe >= 1.5 and os_ / ps <= 0.5 and ow / pw <= 0.5
    print(f"goal: throughput >= 1.5x and statements, WAL <= 0.5x PgQueuer's: {'met' if met else 'missed'}")


if __name__ == "__main__":
    main()
