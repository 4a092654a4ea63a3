"""`make demo` / `calsync demo`: the incident of 2025-11-24, replayed on an embedded database.

1. the incident's initial state as data, on revision 0001 (the app as it is), next to a generated salon;
2. calsync's schema, outbox and remediation (revisions up to 0005; no rules yet) and the dashboard;
3. the pre-flight report of the integrity revisions;
4. the runbook (`calsync remediate`), with its before/after summary;
5. the integrity revisions (the business cases left, host conflicts, listed as known issues);
6. the worker against the Cal.com simulator, results per category;
7. the state afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
from typing import Any

import psycopg

from worker.db import connect
from worker.devtools import datagen, simsetup
from worker.devtools.embedded import DEFAULT_DB, EmbeddedPostgres
from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.ops import migrate, preflight, report
from worker.ops import runbook as remediation
from worker.sync.drain import Worker
from worker.sync.settings import WorkerSettings

API_KEY = "cal_test_calsync"
BEFORE_RULES = "0005"


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n== {text}\n{'=' * 100}", flush=True)


def fresh_database(emb: EmbeddedPostgres) -> str:
    st = emb.start()
    admin = st.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DEFAULT_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DEFAULT_DB}"')
    return st.url


def load_incident(url: str, now: dt.datetime) -> None:
    migrate.upgrade(url, "0001")
    params = datagen.Params(salons=1, anchor=now, failed_permille=0, pending_permille=0, anonymous_percent=0,
                            id_offset=10000)  # fmt: skip
    with connect(url) as conn:
        datagen.generate(conn, params, then=("incident_dataset",))
        print(report.table(["what", "count"], [[w, n] for w, n in datagen.summary(conn)]))


def sync_with_simulator(url: str, rate_limit: int = 120) -> dict[str, Any]:
    with SimulatorProcess(SimulatorConfig(api_keys=(API_KEY,), seed=1, rate_limit=rate_limit)) as sim:
        n = simsetup.register(url, sim.base_url)
        print(f"Cal.com simulator on {sim.base_url} (a real HTTP server) with {n} event types")
        settings = WorkerSettings(database_url=url, api_key=API_KEY, base_url=sim.base_url, once=True,
                                  poll_interval_s=0.5, rate_limit=rate_limit)  # fmt: skip
        started = time.monotonic()
        asyncio.run(Worker(settings).run())
        stats = sim.stats()
        print(
            f"worker drained the outbox in {time.monotonic() - started:.1f} s; "
            f"the simulator answered {stats['requestsTotal']} requests, holds {stats['bookings']['active']} bookings"
        )
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT category, count(*) FROM calsync.sync_attempts GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        events = conn.execute(
            "SELECT a.id, a.calcom_sync_status, coalesce(a.sync_error_code, 'OK') FROM appointments a "
            "WHERE a.id IN (SELECT DISTINCT appointment_id FROM calsync.sync_attempts) ORDER BY 1"
        ).fetchall()
    print("\nHTTP attempts per category:")
    print(report.table(["category", "attempts"], [list(r) for r in rows]))
    print("\nAppointments the worker handled:")
    print(report.table(["appointment", "calcom_sync_status", "result"], [list(r) for r in events]))
    return stats


def run(args: argparse.Namespace) -> int:
    replay(fresh_database(EmbeddedPostgres()))
    print('\nConnect with: psql "$(calsync db url)"; the markdown report: calsync report --markdown report.md')
    return 0


def replay(url: str, *, rate_limit: int = 120) -> dict[str, Any]:
    """The demo on an empty database at ``url``; returns the dashboards before and after and what is left.
    ``rate_limit``: the simulator's (and the worker's) requests per minute, Cal.com's 120 by default."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    banner("1. The incident's initial state, as data, on revision 0001 (the app's database as it is)")
    load_incident(url, now)

    banner(f"2. calsync's schema, outbox and remediation views (revisions up to {BEFORE_RULES}; no rules yet)")
    migrate.upgrade(url, BEFORE_RULES)
    start = report.report(url)
    print(report.render_report(start))

    banner("3. Pre-flight of the integrity revisions (calsync migrate --preflight)")
    print(preflight.render(preflight.run(url)))

    banner("4. The runbook: calsync remediate --reason 'incident 2025-11-24'")
    result = remediation.run(url, reason="incident 2025-11-24", operator="demo")
    print(report.render_run(result))

    banner("5. The integrity revisions (CALSYNC_PREFLIGHT=new-rows-only: the business cases stay listed)")
    print(preflight.render(preflight.run(url)))
    os.environ["CALSYNC_PREFLIGHT"] = "new-rows-only"
    try:
        migrate.upgrade(url, "heads")
    finally:
        os.environ.pop("CALSYNC_PREFLIGHT", None)
    with connect(url) as conn:
        issues = conn.execute("SELECT rule, row_id, detail FROM calsync.integrity_issues WHERE resolved_at IS NULL "
                              "ORDER BY 2").fetchall()  # fmt: skip
    print(f"database at {sorted(migrate.current_heads(url))}; known issues the rules grandfathered:")
    print(report.table(["rule", "row", "detail"], [[a, b, str(c)[:90]] for a, b, c in issues]))

    banner("6. The worker syncs the outbox to the Cal.com simulator")
    sync_with_simulator(url, rate_limit)

    banner("7. Afterwards (calsync status; calsync report)")
    final = report.report(url)
    print(report.render_report(final))
    before, after = start["health"], final["health"]
    banner("Before and after")
    print(report.table(["", "incident start", "after calsync"], [
        ["Sync Health", before["health"], after["health"]],
        ["Failed Sync", before["failed"], after["failed"]],
        ["Manual Review", before["manual_review"], after["manual_review"]],
        ["Critical Alerts", before["critical_alerts"], after["critical_alerts"]],
        ["Ancient Failures (>24h)", before["ancient_failures"], after["ancient_failures"]],
    ]))  # fmt: skip
    left = {c: [f["appointment_id"] for f in rows] for c, rows in final["failures"].items()}
    actions = {c: rows[0]["recommended_action"] for c, rows in final["failures"].items()}
    print(f"\nLeft for a person: {left or 'nothing'}")
    for c, action in actions.items():
        print(f"  {c}: {action}")
    return {"before": start, "after": final, "left": left, "run_id": result.run_id}
