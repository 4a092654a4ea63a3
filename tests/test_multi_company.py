"""Many companies: each books with its own Cal.com key (else the fallback), a company without a key is held and
reported (not failed), keys are added and rotated without a restart, a 429 pauses the key for every worker, and
the claim interleaves companies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Db
from tests.multi_support import (
    accept_keys,
    book_for,
    company_key,
    credentials,
    made_by,
    make_companies,
    tracker,
    write_key,
)
from tests.worker_support import API_KEY, NO_FAULTS, appointment, drain, outbox_left, settings, simulator
from worker.devtools import simsetup
from worker.devtools.simulator import SimulatorProcess
from worker.ops import report
from worker.sync.drain import Worker

__all__ = ["simulator"]  # fixture


@pytest.fixture
def sim(simulator: SimulatorProcess, db: Db) -> SimulatorProcess:
    simulator.reset(event_types=True)
    simulator.set_config(**NO_FAULTS, rate_limit=1_000_000, latency_ms=[0, 0], api_keys=[API_KEY], clock_offset_s=0)
    return simulator


def register(db: Db, sim: SimulatorProcess) -> None:
    simsetup.register(db.url, sim.base_url)


def open_problems(db: Db) -> list[tuple[str, str]]:
    with db.connect() as conn:
        return [
            (str(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT key_ref, category FROM calsync.key_problems WHERE resolved_at IS NULL ORDER BY key_ref"
            )
        ]


def delivery(db: Db, appointment_id: int) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT d.status, d.attempts, d.last_category FROM calsync.outbox_delivery d "
            "JOIN calsync.outbox o ON o.id = d.outbox_id WHERE o.aggregateid = %s",
            [str(appointment_id)],
        ).fetchall()


async def until(predicate: Callable[[], bool], what: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def running(worker: Worker, body: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        task = asyncio.create_task(worker.run())
        try:
            await body()
        finally:
            worker.stop()
            await task

    asyncio.run(run())


def test_each_company_books_with_its_own_key_and_the_others_with_the_fallback(
    db: Db, sim: SimulatorProcess, tmp_path: Path
) -> None:
    companies = make_companies(db, 3)
    keys = credentials(tmp_path / "creds", companies, own=[0, 1])
    accept_keys(sim, list(keys.values()))
    register(db, sim)
    booked = {c["company"]: [book_for(db, c, slot) for slot in range(2)] for c in companies}
    drain(db, sim, credentials_dir=tmp_path / "creds")
    assert outbox_left(db) == 0
    for company, ids in booked.items():
        for appointment_id in ids:
            assert appointment(db, appointment_id)["calcom_sync_status"] == "synced"
            assert made_by(sim, appointment_id) == [tracker(keys[company])], "booked once, with the company's key"
    assert keys[companies[2]["company"]] == API_KEY, "the company without a key file used the fallback"
    with db.connect() as conn:
        refs = [r[0] for r in conn.execute("SELECT key_ref FROM calsync.rate_limits ORDER BY key_ref")]
        stored = conn.execute("SELECT string_agg(t::text, '') FROM calsync.sync_attempts t").fetchone()
    assert refs == sorted(["default", f"company:{companies[0]['company']}", f"company:{companies[1]['company']}"])
    assert stored is not None and not any(k in str(stored[0]) for k in keys.values()), "no key is ever stored"


def test_a_company_without_a_key_is_held_and_reported_until_its_key_file_appears(
    db: Db, sim: SimulatorProcess, tmp_path: Path
) -> None:
    """No fallback key: the company without a file is a configuration problem of that company. Its event is not
    attempted (no attempt counted, no request), remediation.sync_health names the company, the others sync; once
    its key file is there the running worker books it without a restart and the problem is resolved."""
    companies = make_companies(db, 2)
    root = tmp_path / "creds"
    keys = credentials(root, companies, own=[0])
    late_key = company_key(1)
    accept_keys(sim, [*keys.values(), late_key])
    register(db, sim)
    ok, held = book_for(db, companies[0], 0), book_for(db, companies[1], 0)
    worker = Worker(settings(db, sim, api_key="", credentials_dir=root, credentials_ttl_s=0.2, once=False))
    held_ref = f"company:{companies[1]['company']}"

    async def body() -> None:
        await until(lambda: appointment(db, ok)["calcom_sync_status"] == "synced", "the company with a key")
        await until(lambda: (held_ref, "KEY_MISSING") in open_problems(db), "the missing key reported")
        await asyncio.sleep(0.5)  # long enough for a second claim of it, if the hold did not work
        assert delivery(db, held) == [("retry", 0, "KEY_MISSING")], "held: due, no attempt counted"
        with db.connect() as conn:
            health = conn.execute("SELECT health, alerts, companies FROM remediation.sync_health").fetchone()
        assert health is not None and health[0] == "CRITICAL"
        assert any(a["alert"] == "key_missing" and held_ref in a["message"] for a in health[1])
        assert any(c["company_id"] == companies[1]["company"] and c["held"] == 1 for c in health[2])
        assert made_by(sim, held) == [], "nothing was sent for it"
        status = report.status(db.url)  # calsync status (--json)
        shown = report.render_status(status)
        assert any(c["company_id"] == companies[1]["company"] and c["held"] == 1 for c in status["companies"])
        assert "Per company:" in shown and "KEY_MISSING" in shown and "Rate limits" in shown
        write_key(root, companies[1]["company"], late_key)
        await until(lambda: appointment(db, held)["calcom_sync_status"] == "synced", "the late key used")

    running(worker, body)
    assert made_by(sim, held) == [tracker(late_key)]
    assert appointment(db, held)["sync_attempt_count"] == 1
    assert open_problems(db) == [], "the problem is resolved"


def test_a_key_file_others_may_read_holds_its_company(db: Db, sim: SimulatorProcess, tmp_path: Path) -> None:
    companies = make_companies(db, 1)
    root = tmp_path / "creds"
    root.mkdir(mode=0o700)
    write_key(root, companies[0]["company"], company_key(0), mode=0o644)
    accept_keys(sim, [company_key(0)])
    register(db, sim)
    appointment_id = book_for(db, companies[0], 0)
    drain(db, sim, credentials_dir=root)
    assert made_by(sim, appointment_id) == [], "neither its own key nor the fallback was used"
    assert delivery(db, appointment_id) == [("retry", 0, "KEY_MISSING")]
    error = appointment(db, appointment_id)["sync_error_message"]
    assert "readable by group or others" in error and "chmod 600" in error and company_key(0) not in error


def test_a_rotated_key_is_used_without_a_restart(db: Db, sim: SimulatorProcess, tmp_path: Path) -> None:
    companies = make_companies(db, 1)
    root = tmp_path / "creds"
    credentials(root, companies, own=[0])
    new_key = "cal_test_rotated_000"
    accept_keys(sim, [company_key(0), new_key])
    register(db, sim)
    first = book_for(db, companies[0], 0)
    worker = Worker(settings(db, sim, credentials_dir=root, credentials_ttl_s=0.2, once=False))
    second: list[int] = []

    async def body() -> None:
        await until(lambda: appointment(db, first)["calcom_sync_status"] == "synced", "the first booking")
        write_key(root, companies[0]["company"], new_key)
        await asyncio.sleep(0.5)  # past the credentials' ttl
        second.append(book_for(db, companies[0], 1))
        await until(lambda: appointment(db, second[0])["calcom_sync_status"] == "synced", "the second booking")

    running(worker, body)
    assert made_by(sim, first) == [tracker(company_key(0))]
    assert made_by(sim, second[0]) == [tracker(new_key)], "the new key, same worker process"


def test_a_429_seen_by_one_worker_pauses_the_key_for_the_others(db: Db, sim: SimulatorProcess) -> None:
    """Cal.com allows this key fewer requests than the workers think (someone else uses it too): the first 429
    pauses the key in calsync.rate_limits, and a second worker asking for slots gets none before the pause ends."""
    companies = make_companies(db, 1)
    register(db, sim)
    sim.set_config(rate_limit=2, rate_limit_window_s=60, rate_limit_block_s=30)
    ids = [book_for(db, companies[0], slot) for slot in range(4)]
    for _ in range(2):  # someone else uses up the key's window
        httpx.get(sim.base_url + "/v2/me", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    drain(db, sim)
    with db.connect() as conn:
        row = conn.execute(
            "SELECT pauses, paused_until > now() + interval '20 seconds' FROM calsync.rate_limits "
            "WHERE key_ref = 'default'"
        ).fetchone()
        # a second worker (as an admin session: the same function, no worker secret) asks for a slot now
        slots = conn.execute(
            "SELECT granted, first_in_s, paused_for_s FROM calsync.take_rate_slots('other', 'default', 1, 117, "
            "interval '60 s', interval '10 s')"
        ).fetchone()
    assert row == (1, True), "one 429, and the key is paused for Cal.com's whole block (30 s)"
    assert slots is not None and slots[0] == 0 and slots[1] > 20 and slots[2] > 20, "no slot during the pause"
    stats = sim.stats()["byKey"][tracker(API_KEY)]
    assert stats["rateLimited"] == 1, "the worker stopped at the first 429"
    assert all(delivery(db, i)[0][:2] == ("retry", 0) for i in ids), "due again, not counted as attempts"


def test_the_claim_interleaves_companies(db: Db) -> None:
    """A backlog of one company does not queue another company's new booking behind it: each claim takes every
    company's oldest event first."""
    companies = make_companies(db, 3)
    big = [book_for(db, companies[0], slot) for slot in range(30)]
    quiet = book_for(db, companies[1], 0)
    other = book_for(db, companies[2], 0)
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT appointment_id, company_id FROM calsync.claim_sync_events('w', 4, interval '1 minute', '{}', 2)"
        ).fetchall()
        skipped = conn.execute(
            "SELECT appointment_id, company_id FROM calsync.claim_sync_events('w', 10, interval '1 minute', %s, 10)",
            [[companies[1]["company"], companies[2]["company"]]],
        ).fetchall()
    claimed = [r[0] for r in rows]
    assert set(claimed[:3]) == {big[0], quiet, other}, "round one: every company's oldest"
    assert claimed[3] == big[1], "round two"
    assert all(r[1] == companies[0]["company"] for r in skipped) and len(skipped) == 10, "skipped companies wait"
