"""Helpers for the worker tests: a simulator process, a salon, and running the worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import Db
from worker.devtools import simsetup
from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.resources import ROOT
from worker.sync.drain import Worker
from worker.sync.settings import WorkerSettings

API_KEY = "cal_test_calsync"
FUTURE = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0) + dt.timedelta(days=30)


# the simulator's fault injection, all off
NO_FAULTS: dict[str, Any] = {
    "fail_5xx_rate": 0,
    "timeout_rate": 0,
    "reset_after_store_rate": 0,
    "false_negative_rate": 0,
    "malformed_rate": 0,
    "conflict_rate": 0,
}


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(SimulatorConfig(api_keys=(API_KEY,), rate_limit=1_000_000, seed=7)) as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorProcess, salon: dict[str, Any], db: Db) -> SimulatorProcess:
    """The simulator, reset, with no faults, knowing the salon's event types."""
    simulator.reset(event_types=True)
    simulator.set_config(**NO_FAULTS, rate_limit=1_000_000, latency_ms=[0, 0], api_keys=[API_KEY], clock_offset_s=0)
    simsetup.register(db.url, simulator.base_url)
    return simulator


@pytest.fixture
def salon(db: Db) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute("SELECT tests.make_salon()").fetchone()
        conn.commit()
    assert row is not None
    return dict(row[0])  # type: ignore[call-overload]


def book(
    db: Db,
    salon: dict[str, Any],
    *,
    service: str = "cut",
    staff: str = "lena",
    start: dt.datetime = FUTURE,
    customer: int | None = None,
) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT tests.make_appointment(%s, %s, %s, %s)",
            [customer or salon["customer"], salon[service], salon[staff], start],
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def settings(db: Db, sim: SimulatorProcess, **over: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "database_url": db.url,
        "api_key": API_KEY,
        "base_url": sim.base_url,
        "poll_interval_s": 0.2,
        "lease_s": 30,
        "once": True,
        "request_timeout_s": 5,
    }
    values.update(over)
    return WorkerSettings(**values)


def drain(db: Db, sim: SimulatorProcess, **over: Any) -> None:
    """Run the worker in this process until nothing is due."""
    asyncio.run(Worker(settings(db, sim, **over)).run())


def appointment(db: Db, appointment_id: int) -> dict[str, Any]:
    with db.connect() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        row = cur.execute("SELECT * FROM appointments WHERE id = %s", [appointment_id]).fetchone()
    assert row is not None
    return dict(row)


def attempts(db: Db, appointment_id: int) -> list[dict[str, Any]]:
    with db.connect() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return [
            dict(r)
            for r in cur.execute(
                "SELECT * FROM calsync.sync_attempts WHERE appointment_id = %s ORDER BY id", [appointment_id]
            )
        ]


def meta(sim: SimulatorProcess, appointment_id: int) -> list[dict[str, Any]]:
    """The simulator's bookings that carry this appointment in their metadata."""
    return sim.bookings("calsync_appointment_id", str(appointment_id))


def active(bookings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in bookings if b["status"] not in ("cancelled", "rejected")]


def outbox_left(db: Db) -> int:
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM calsync.outbox").fetchone()
    return int(row[0])  # type: ignore[index,call-overload]


class WorkerProcess(subprocess.Popen[str]):
    """A worker process whose output goes to a file, not a pipe: a pipe nobody reads fills up (64 KiB) and the
    worker would block on its next log line, which is how a long run once looked like a wedged worker."""

    log_path: str

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def worker_process(db: Db, sim: SimulatorProcess, *args: str, **env: str) -> WorkerProcess:
    """`calsync worker` as a real OS process (for crash and signal tests)."""
    environment = {
        **os.environ,
        "CALCOM_API_KEY": API_KEY,
        "CALSYNC_DATABASE_URL": db.url,
        "CALCOM_BASE_URL": sim.base_url,
        "CALSYNC_POLL_INTERVAL_S": "0.2",
        **env,
    }
    fd, log_path = tempfile.mkstemp(prefix="calsync-worker-", suffix=".log")
    with os.fdopen(fd, "w") as log:
        proc = WorkerProcess(
            [sys.executable, "-m", "worker", "worker", *args],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc.log_path = log_path
    return proc
