"""`make demo` / `calsync demo`: the incident of 2025-11-24, replayed on an embedded database.

1. the incident's initial state as data, on revision 0001 (the app as it is), next to a generated salon;
2. calsync's schema, outbox and remediation (revisions up to 0005; no rules yet) and the dashboard;
3. the pre-flight report of the integrity revisions;
4. the runbook (`calsync remediate`), with its before/after summary;
5. the integrity revisions (the business cases left, host conflicts, listed as known issues);
6. the worker against the Cal.com simulator, results per category; then a customer reschedules one booking at
   the simulator, whose webhook reaches `calsync webhooks` (a real process) and moves the appointment;
7. the state afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from worker.db import connect
from worker.devtools import datagen, simsetup
from worker.devtools.embedded import DEFAULT_DB, EmbeddedPostgres
from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.ops import migrate, preflight, report
from worker.ops import runbook as remediation
from worker.resources import ROOT
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
    """The worker drains the outbox into the simulator, then a customer reschedules at Cal.com (webhooks in)."""
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
        summary(url)
        banner("6b. Webhooks in: a customer reschedules at Cal.com, the appointment follows")
        stats["webhook"] = customer_reschedules(url, sim)
    return stats


def summary(url: str) -> None:
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


def start_receiver(url: str, secret: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`calsync webhooks` as its own process on a free port of 127.0.0.1; returns it and its webhook URL."""
    env = {**os.environ, "CALSYNC_DATABASE_URL": url, "CALCOM_WEBHOOK_SECRET": secret,
           "CALSYNC_WEBHOOK_LISTEN": "127.0.0.1:0", "CALSYNC_WEBHOOK_RETRY_S": "0.5"}  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "worker", "webhooks"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if m := re.search(r'"event": "webhooks_listening".*"port": (\d+)', log_path.read_text(errors="replace")):
            return proc, f"http://127.0.0.1:{m.group(1)}/webhooks/calcom"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"calsync webhooks did not start: {log_path.read_text(errors='replace')[-2000:]}")


def reschedule_somewhere_free(sim: SimulatorProcess, uid: str, starts_at: dt.datetime) -> tuple[Any, dt.datetime]:
    """The customer's new time: a week later, else the next hours and weeks, until the host is free at Cal.com."""
    problem = ""
    for week in range(1, 6):
        for hour in (1, 2, 3, -1, -2):
            target = starts_at + dt.timedelta(days=7 * week, hours=hour)
            try:
                return sim.reschedule_as(uid, target.strftime("%Y-%m-%dT%H:%M:%SZ"), by="attendee",
                                         reason="Ich kann erst später"), target  # fmt: skip
            except httpx.HTTPStatusError as e:
                problem = e.response.text[:300]
    raise RuntimeError(f"the simulator refused every new time for booking {uid}: {problem}")


def customer_reschedules(url: str, sim: SimulatorProcess) -> dict[str, Any]:
    """A customer moves one synced booking at Cal.com (the simulator's attendee link); its BOOKING_RESCHEDULED
    webhook reaches the receiver, which moves the appointment (marked sync_origin = 'calcom', nothing enqueued)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT a.id, a.starts_at, a.calcom_v2_booking_uid FROM appointments a WHERE NOT a.is_composite "
            "AND a.calcom_sync_status = 'synced' AND a.calcom_v2_booking_uid IS NOT NULL AND a.starts_at > now() "
            "AND a.status IN ('confirmed', 'booked', 'scheduled', 'pending') AND NOT a.requires_manual_review "
            "AND EXISTS (SELECT 1 FROM calsync.synced_bookings b WHERE b.appointment_id = a.id AND b.slot = 0 "
            "AND b.uid = a.calcom_v2_booking_uid) "
            "ORDER BY a.starts_at LIMIT 1"
        ).fetchone()
    if row is None:
        print("no synced upcoming appointment to reschedule")
        return {"moved": False}
    appointment_id, starts_at, uid = row
    assert isinstance(starts_at, dt.datetime)
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        proc, hook_url = start_receiver(url, secret, Path(tmp) / "webhooks.log")
        try:
            triggers = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
            sim.register_webhooks(
                [{"id": "calsync", "subscriberUrl": hook_url, "secret": secret, "triggers": triggers}]
            )
            print(f"calsync webhooks listening on {hook_url} (a real process); Cal.com's subscription points there")
            print(f"appointment {appointment_id} at {starts_at:%Y-%m-%d %H:%M} UTC, Cal.com booking {uid}")
            moved, target = reschedule_somewhere_free(sim, str(uid), starts_at)
            successor = moved["booking"]["uid"]
            print(f"the customer reschedules at Cal.com to {target:%Y-%m-%d %H:%M} UTC: new booking {successor}")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with connect(url) as conn:
                    now = conn.execute("SELECT starts_at, calcom_v2_booking_uid, sync_origin FROM appointments "
                                       "WHERE id = %s", [appointment_id]).fetchone()  # fmt: skip
                if now is not None and now[0] == target:
                    break
                time.sleep(0.1)
            with connect(url) as conn:
                deliveries = conn.execute(
                    "SELECT id, trigger_event, outcome, detail FROM calsync.webhook_deliveries ORDER BY id"
                ).fetchall()
                queued = conn.execute(
                    "SELECT count(*) FROM calsync.outbox WHERE aggregateid = %s", [str(appointment_id)]
                ).fetchone()
        finally:
            proc.terminate()
            proc.wait(20)
    if now is None or queued is None:
        raise RuntimeError(f"appointment {appointment_id} is gone")
    print(
        report.table(
            ["delivery", "trigger", "outcome", "detail"], [[a, b, c, str(d)[:80]] for a, b, c, d in deliveries]
        )
    )
    print(f"appointment {appointment_id} now at {now[0]:%Y-%m-%d %H:%M} UTC, booking {now[1]}, sync_origin {now[2]}; "
          f"outbox events it made: {queued[0]} (no echo back to Cal.com)")  # fmt: skip
    return {"appointment_id": appointment_id, "moved": now[0] == target and now[1] == successor,
            "echoed": queued[0]}  # fmt: skip


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
    stats = sync_with_simulator(url, rate_limit)

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
    return {"before": start, "after": final, "left": left, "run_id": result.run_id, "webhook": stats["webhook"]}
