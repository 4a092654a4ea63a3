"""Chaos soak (make soak; excluded from make test): 2,000 appointments, a faulty Cal.com, a worker killed and
restarted every few seconds. It must converge: every live appointment has exactly one booking per
staff-required unit at the simulator (one for a simple service, one per staff-required phase of a composite),
cancelled ones have none, and no event is lost.

Faults: 20 % 5xx, 10 % timeouts (the simulator hangs 1.5 s after doing the work; the worker gives up after
1 s), 5 % connection resets after the booking was stored, 3 % false-negative 400s after storing. The rate limit
is raised for the run. During the run some appointments are cancelled and some moved.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Db
from tests.worker_support import salon, sim, simulator, worker_process
from worker.devtools.simulator import SimulatorProcess

__all__ = ["salon", "sim", "simulator"]

N = int(os.environ.get("CALSYNC_CHAOS_APPOINTMENTS", "2000"))
KILL_FOR_S = float(os.environ.get("CALSYNC_CHAOS_KILL_FOR_S", "60"))
T0 = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def _schedule(db: Db, salon: dict[str, Any]) -> list[int]:
    """N appointments, 80 % simple and 20 % Dauerwelle, alternating staff on 150-minute slots (staff two
    starts 75 minutes later), so neither our rules nor the simulator's per-host calendar see an overlap."""
    rng = random.Random(11)
    ids = []
    with db.connect() as conn:
        customers = [
            conn.execute(
                "SELECT tests.make_customer(%s, %s, %s)", [salon["company"], f"Kunde {i}", f"kunde{i}@mail.example"]
            ).fetchone()[0]  # type: ignore[index]
            for i in range(max(1, N // 4))
        ]
        for i in range(N):
            staff = "lena" if i % 2 == 0 else "mia"
            start = T0 + dt.timedelta(minutes=150 * (i // 2) + (75 if staff == "mia" else 0))
            service = "perm" if rng.random() < 0.2 else "cut"
            row = conn.execute(
                "SELECT tests.make_appointment(%s, %s, %s, %s)",
                [customers[i % len(customers)], salon[service], salon[staff], start],
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))  # type: ignore[call-overload]
        conn.commit()
    return ids


def _meddle(db: Db, ids: list[int]) -> None:
    """While the worker runs: cancel every 10th appointment and move every 15th a year ahead."""
    with db.connect() as conn:
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = ANY(%s)", [ids[::10]])
        conn.execute(
            "UPDATE appointments SET starts_at = starts_at + interval '365 days', "
            "ends_at = ends_at + interval '365 days' WHERE id = ANY(%s) AND status <> 'cancelled'",
            [ids[5::15]],
        )
        conn.commit()


def _expected(db: Db) -> dict[str, int]:
    """Bookings each (appointment, phase) must have: 1 per staff-required unit of a live appointment."""
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT a.id::text || ':' || coalesce(p.id::text, '') , 1
               FROM appointments a LEFT JOIN appointment_phases p ON p.appointment_id = a.id AND p.staff_required
               WHERE a.status <> 'cancelled' AND (NOT a.is_composite OR p.id IS NOT NULL)"""
        ).fetchall()
    return {str(k): int(v) for k, v in rows}  # type: ignore[call-overload]


def _actual(sim: SimulatorProcess) -> Counter[str]:
    found: Counter[str] = Counter()
    for b in sim.bookings():
        if b["status"] in ("cancelled", "rejected"):
            continue
        meta = b.get("metadata") or {}
        found[f"{meta.get('calsync_appointment_id')}:{meta.get('calsync_phase_id') or ''}"] += 1
    return found


def _pending(db: Db) -> int:
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM calsync.outbox").fetchone()
    return int(row[0])  # type: ignore[index,call-overload]


@pytest.mark.slow
def test_chaos_converges(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    sim.set_config(
        fail_5xx_rate=0.20,
        timeout_rate=0.10,
        timeout_hang_s=1.5,
        reset_after_store_rate=0.05,
        false_negative_rate=0.03,
        rate_limit=10_000_000,
        seed=2026,
    )
    ids = _schedule(db, salon)
    args = [
        "--concurrency",
        "16",
        "--request-timeout-s",
        "1",
        "--retry-base-s",
        "0.2",
        "--max-attempts",
        "200",
        "--retry-cap-s",
        "5",
        "--lease-s",
        "5",
        "--rate-limit",
        "10000000",
    ]
    env = {"CALSYNC_POLL_INTERVAL_S": "0.5"}
    started = time.monotonic()
    kills = 0
    proc = worker_process(db, sim, *args, **env)
    meddled = False
    while time.monotonic() - started < KILL_FOR_S:
        time.sleep(random.uniform(2.0, 5.0))
        proc.kill()
        proc.wait()
        kills += 1
        if not meddled and time.monotonic() - started > KILL_FOR_S / 3:
            _meddle(db, ids)
            meddled = True
        proc = worker_process(db, sim, *args, **env)
    deadline = time.monotonic() + float(os.environ.get("CALSYNC_CHAOS_CONVERGE_S", "600"))
    try:
        while _pending(db) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
        assert proc.poll() is None, f"the worker exited on its own:\n{proc.output()[-3000:]}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    took = time.monotonic() - started
    stats = sim.stats()
    expected, actual = _expected(db), _actual(sim)
    duplicates = {k: n for k, n in actual.items() if n > 1}
    missing = [k for k in expected if actual.get(k, 0) == 0]
    stray = [k for k in actual if k not in expected]
    with db.connect() as conn:
        dead = conn.execute("SELECT count(*) FROM calsync.outbox_delivery WHERE status = 'dead'").fetchone()
        synced = conn.execute(
            "SELECT count(*) FROM appointments WHERE status <> 'cancelled' AND calcom_sync_status = 'synced'"
        ).fetchone()
        live = conn.execute("SELECT count(*) FROM appointments WHERE status <> 'cancelled'").fetchone()
    print(
        f"\nchaos: {N} appointments, {kills} kills in {KILL_FOR_S:.0f} s, converged after {took:.0f} s; "
        f"simulator requests {stats['requestsTotal']}, faults {stats['faults']}; "
        f"bookings expected {len(expected)}, found {sum(actual.values())}"
    )
    with db.connect() as conn:
        left = conn.execute(
            "SELECT o.aggregateid, o.type, d.status, d.attempts, d.last_category, left(d.last_error, 200), "
            "d.next_attempt_at - now(), d.locked_by FROM calsync.outbox o "
            "LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id ORDER BY o.seq LIMIT 20"
        ).fetchall()
    assert _pending(db) == 0, f"every event was delivered; left: {left}"
    assert dead == (0,)
    assert not duplicates, f"bookings made twice: {list(duplicates.items())[:10]}"
    assert not missing, f"bookings missing: {missing[:10]}"
    assert not stray, f"bookings that should not exist (cancelled or superseded): {stray[:10]}"
    assert synced == live
    errors = [line for line in proc.output().splitlines() if '"level": "error"' in line]
    assert not errors, "the worker logged errors (faults are retries, not errors):\n" + "\n".join(errors[:5])
