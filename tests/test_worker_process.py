"""`calsync worker` as a real process: crash (SIGKILL) and restart, SIGTERM, a PostgreSQL restart mid-drain,
the rate limit, waking on NOTIFY, and the systemd unit."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Db, prepare_template, start_server
from tests.worker_support import (
    FUTURE,
    NO_FAULTS,
    WorkerProcess,
    book,
    drain,
    salon,
    sim,
    simulator,
    worker_process,
)
from worker.devtools.simulator import SimulatorProcess
from worker.resources import ROOT

__all__ = ["salon", "sim", "simulator"]  # fixtures


def book_many(db: Db, salon: dict[str, Any], n: int) -> list[int]:
    """n appointments at distinct times (two hours apart, alternating staff)."""
    return [
        book(db, salon, staff="lena" if i % 2 else "mia", start=FUTURE + dt.timedelta(hours=2 * i)) for i in range(n)
    ]


def synced_count(db: Db, ids: list[int]) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM appointments WHERE id = ANY(%s) AND calcom_sync_status = 'synced'", [ids]
        ).fetchone()
    return int(row[0])  # type: ignore[index,call-overload]


def wait_until(predicate: Any, timeout: float, what: str, proc: Any = None) -> None:
    """Poll until ``predicate()``; a database that is restarting (the test's own doing) counts as not yet. On a
    timeout the worker's last log lines (and whether it is still running) are part of the failure."""
    deadline = time.monotonic() + timeout
    while not _holds(predicate):
        if time.monotonic() > deadline:
            more = ""
            if proc is not None:
                tail = Path(proc.log_path).read_text(errors="replace").splitlines()[-15:]
                more = f" (worker exit code {proc.poll()}; its log ends:\n" + "\n".join(tail) + ")"
            raise AssertionError(f"timed out waiting for {what}{more}")
        time.sleep(0.1)


def _holds(predicate: Any) -> bool:
    try:
        return bool(predicate())
    except psycopg.OperationalError:  # a restarted server still starting up ("the database system is starting up")
        return False


def bookings_per_appointment(sim: SimulatorProcess) -> dict[str, int]:
    counts: dict[str, int] = {}
    for b in sim.bookings():
        if b["status"] not in ("cancelled", "rejected"):
            key = (b.get("metadata") or {}).get("calsync_appointment_id")
            counts[key] = counts.get(key, 0) + 1
    return counts


def stop(proc: WorkerProcess, sig: int = signal.SIGTERM, timeout: float = 30) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=timeout)
    return proc.output()


def test_sigkill_mid_batch_then_restart_loses_nothing_and_books_nothing_twice(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    ids = book_many(db, salon, 30)
    sim.set_config(latency_ms=[40, 120])
    proc = worker_process(db, sim, "--concurrency", "4", "--lease-s", "2")
    wait_until(lambda: synced_count(db, ids) >= 5, 30, "some syncs before the kill", proc)
    stop(proc, signal.SIGKILL)
    killed_at = synced_count(db, ids)
    assert killed_at < len(ids), "the kill came mid-drain"
    time.sleep(2.5)  # the dead worker's leases expire
    drain(db, sim, concurrency=4)
    assert synced_count(db, ids) == len(ids), "nothing is lost"
    counts = bookings_per_appointment(sim)
    assert all(counts.get(str(i)) == 1 for i in ids), f"exactly one booking each: {counts}"


def test_sigterm_finishes_in_flight_work_and_releases_the_rest(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    ids = book_many(db, salon, 12)
    sim.set_config(latency_ms=[300, 300])
    proc = worker_process(db, sim, "--concurrency", "3")
    wait_until(lambda: synced_count(db, ids) >= 1, 30, "the first sync", proc)
    t0 = time.monotonic()
    out = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0 and time.monotonic() - t0 < 10
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert "worker_stopping" in events and events[-1] == "worker_stopped"
    with db.connect() as conn:
        running = conn.execute("SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'running'").fetchone()
    assert running == (0,), "nothing is left leased to the stopped worker"
    drain(db, sim)
    assert synced_count(db, ids) == len(ids)
    assert all(c == 1 for c in bookings_per_appointment(sim).values())


def test_wakes_on_notify_without_waiting_for_the_poll(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    proc = worker_process(db, sim, CALSYNC_POLL_INTERVAL_S="30")
    try:
        wait_until(lambda: _idle(db), 30, "the worker to go idle")
        a = book(db, salon)
        t0 = time.monotonic()
        wait_until(lambda: synced_count(db, [a]) == 1, 10, "the sync")
        assert time.monotonic() - t0 < 3, "woken by NOTIFY, not by the 30 s poll"
    finally:
        stop(proc)


def _idle(db: Db) -> bool:
    with db.connect() as conn:
        return conn.execute("SELECT bool_or(idle) FROM calsync.outbox_listeners").fetchone() == (True,)


def test_sustained_backlog_gets_no_429(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    """A scaled-down window (10 requests per 4 s) so the test takes seconds; bench/rate_limit.py runs 120/60 s."""
    sim.set_config(rate_limit=10, rate_limit_window_s=4, rate_limit_block_s=4)
    ids = book_many(db, salon, 25)
    drain(db, sim, rate_limit=10, rate_window_s=4, concurrency=4)
    assert synced_count(db, ids) == len(ids)
    assert sim.stats()["rateLimited"] == 0


@pytest.fixture
def own_server() -> Iterator[tuple[Any, Db]]:
    """A PostgreSQL server of its own, which the test may restart."""
    executor, base = start_server("restart")
    try:
        yield executor, prepare_template(executor, "restart_db")
    finally:
        try:
            executor.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_postgresql_restart_mid_drain(own_server: tuple[Any, Db], simulator: SimulatorProcess) -> None:
    executor, db = own_server
    simulator.reset(event_types=True)
    simulator.set_config(**NO_FAULTS, latency_ms=[50, 100], rate_limit=1_000_000)
    with db.connect() as conn:
        row = conn.execute("SELECT tests.make_salon()").fetchone()
        conn.commit()
    assert row is not None
    salon_ids = dict(row[0])  # type: ignore[call-overload]
    from worker.devtools import simsetup

    simsetup.register(db.url, simulator.base_url)
    ids = book_many(db, salon_ids, 40)
    proc = worker_process(db, simulator, "--concurrency", "2")
    try:
        wait_until(lambda: synced_count(db, ids) >= 5, 30, "some syncs", proc)
        executor.stop()
        time.sleep(1.0)
        executor.start()
        wait_until(lambda: synced_count(db, ids) == len(ids), 60, "the drain to finish after the restart")
    finally:
        out = stop(proc)
    assert "database_unavailable" in out or "finish_failed" in out or "listen_lost" in out, "it saw the outage"
    counts = bookings_per_appointment(simulator)
    assert all(counts.get(str(i)) == 1 for i in ids), "exactly one booking each"


def test_help_shows_every_setting_and_its_environment_variable() -> None:
    out = subprocess.run(
        ["calsync", "worker", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"},
    ).stdout
    for env in (
        "CALSYNC_DATABASE_URL",
        "CALCOM_BASE_URL",
        "CALSYNC_CONCURRENCY",
        "CALSYNC_RATE_LIMIT",
        "CALCOM_API_KEY",
        "CALCOM_API_KEY_FILE",
    ):
        assert env in out


def test_api_key_missing_is_a_clear_error(db: Db, sim: SimulatorProcess) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CALCOM_API_KEY", "CALCOM_API_KEY_FILE")}
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "worker", "--database-url", db.url, "--once"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode != 0 and "no Cal.com API key" in proc.stderr + proc.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies() -> None:
    unit = (ROOT / "deploy" / "calsync-worker.service").read_text()
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "LoadCredential=calcom_api_key",
        "User=calsync",
    ):
        assert needed in unit
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calsync-worker.service"
        path.write_text(unit.replace("/opt/calsync/.venv/bin/calsync", str(ROOT / ".venv" / "bin" / "calsync")))
        proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
