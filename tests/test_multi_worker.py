"""Several `calsync worker` processes on one database, as real OS processes: they share the work and each key's
rate limit (no 429 although three of them drain one backlog), and when one is killed (SIGKILL) another takes over
its leases; nothing is lost and nothing is booked twice (the simulator's record says which key made what)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Db
from tests.multi_support import accept_keys, book_for, credentials, make_companies, rate_limited, tracker
from tests.worker_support import API_KEY, NO_FAULTS, WorkerProcess, outbox_left, simulator, worker_process
from worker.devtools import simsetup
from worker.devtools.simulator import SimulatorProcess

__all__ = ["simulator"]  # fixture


@pytest.fixture
def sim(simulator: SimulatorProcess, db: Db) -> SimulatorProcess:
    simulator.reset(event_types=True)
    simulator.set_config(**NO_FAULTS, rate_limit=1_000_000, latency_ms=[0, 0], api_keys=[API_KEY], clock_offset_s=0)
    return simulator


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def synced(db: Db, ids: list[int]) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM appointments WHERE id = ANY(%s) AND calcom_sync_status = 'synced'", [ids]
        ).fetchone()
    return int(row[0])  # type: ignore[index,call-overload]


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def bookings_by_appointment(sim: SimulatorProcess) -> dict[int, list[str]]:
    """The key tracker of every live booking, per appointment."""
    found: dict[int, list[str]] = {}
    for b in sim.bookings():
        if b["status"] not in ("cancelled", "rejected"):
            found.setdefault(int(b["metadata"]["calsync_appointment_id"]), []).append(b["_sim"]["madeBy"])
    return found


def leased_by(db: Db, worker_id: str) -> list[int]:
    with db.connect() as conn:
        return [
            int(r[0])
            for r in conn.execute(
                "SELECT aggregateid FROM calsync.outbox_delivery WHERE status = 'running' AND locked_by = %s",
                [worker_id],
            )
        ]


def stop(proc: WorkerProcess) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    return proc.output()


def test_three_workers_share_the_work_and_each_keys_limit(
    db: Db, sim: SimulatorProcess, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    """Cal.com's limit scaled down to 6 requests per 3 s per key (block 3 s), three workers, three keys (two
    companies' own, one fallback), a backlog of 12 per key: one worker alone would pace itself right, three
    that did not share the window would send three times the limit. No 429, every appointment booked once, with
    its company's key, by more than one worker."""
    companies = make_companies(db, 3)
    root = tmp_path / "creds"
    keys = credentials(root, companies, own=[0, 1])
    accept_keys(sim, list(keys.values()), rate_limit=6, rate_limit_window_s=3, rate_limit_block_s=3)
    simsetup.register(db.url, sim.base_url)
    ids = {c["company"]: [book_for(db, c, slot) for slot in range(12)] for c in companies}
    env = {
        "CALSYNC_CREDENTIALS_DIR": str(root),
        "CALSYNC_RATE_LIMIT": "6",
        "CALSYNC_RATE_WINDOW_S": "3",
        "CALSYNC_KEY_CONCURRENCY": "2",
    }
    workers += [worker_process(db, sim, CALSYNC_WORKER_ID=f"w{i}", **env) for i in range(3)]
    every = [i for company in ids.values() for i in company]
    wait_until(lambda: synced(db, every) == len(every), 120, "the backlog drained")
    logs = [stop(p) for p in workers]
    assert outbox_left(db) == 0
    refused = rate_limited(sim)
    assert set(refused) == {tracker(k) for k in keys.values()}
    assert set(refused.values()) == {0}, "no key was ever over its limit"
    booked = bookings_by_appointment(sim)
    for company, company_ids in ids.items():
        for appointment_id in company_ids:
            assert booked.get(appointment_id) == [tracker(keys[company])], "once, with the company's key"
    with db.connect() as conn:
        per_worker = dict(
            conn.execute(
                "SELECT worker_id, count(*) FROM calsync.sync_attempts WHERE action = 'create' GROUP BY worker_id"
            ).fetchall()
        )
    assert len(per_worker) >= 2, f"the work was shared: {per_worker}"
    assert sum(per_worker.values()) == len(every)
    assert all('"event": "worker_stopped"' in log for log in logs)


def test_a_killed_worker_s_leases_are_taken_over_and_nothing_is_sent_twice(
    db: Db, sim: SimulatorProcess, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    """Two workers; one is killed with SIGKILL while it holds leases (requests in flight at a slow Cal.com). The
    other reaps them once the lease (3 s) runs out and finishes the backlog: every appointment synced, booked
    exactly once (an attempt the killed worker may have sent is found by lookup and adopted, not booked again)."""
    companies = make_companies(db, 2)
    root = tmp_path / "creds"
    keys = credentials(root, companies, own=[0])
    accept_keys(sim, list(keys.values()), latency_ms=[400, 400])
    simsetup.register(db.url, sim.base_url)
    ids = [book_for(db, c, slot) for c in companies for slot in range(10)]
    env = {"CALSYNC_CREDENTIALS_DIR": str(root), "CALSYNC_LEASE_S": "3", "CALSYNC_KEY_CONCURRENCY": "3"}
    victim = worker_process(db, sim, CALSYNC_WORKER_ID="victim", **env)
    workers.append(victim)
    wait_until(lambda: len(leased_by(db, "victim")) >= 2, 30, "the victim holding leases")
    survivor = worker_process(db, sim, CALSYNC_WORKER_ID="survivor", **env)
    workers.append(survivor)
    wait_until(lambda: synced(db, ids) >= 2, 30, "some work done")
    held = leased_by(db, "victim")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert held, "the victim died holding leases"
    wait_until(lambda: synced(db, ids) == len(ids), 90, "the survivor finished everything")
    stop(survivor)
    assert outbox_left(db) == 0
    booked = bookings_by_appointment(sim)
    assert {i: len(booked.get(i, [])) for i in ids} == {i: 1 for i in ids}, "every appointment booked exactly once"
    with db.connect() as conn:
        taken_over = conn.execute(
            "SELECT count(DISTINCT appointment_id) FROM calsync.sync_attempts "
            "WHERE worker_id = 'survivor' AND appointment_id = ANY(%s)",
            [held],
        ).fetchone()
    assert taken_over is not None and taken_over[0] >= 1, "the survivor worked on what the victim held"
