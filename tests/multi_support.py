"""Helpers for the multi-company and multi-worker tests: companies with their own keys, a credentials directory,
and what the simulator recorded per key."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from tests.conftest import Db
from tests.worker_support import API_KEY, FUTURE
from worker.devtools.simulator import SimulatorProcess
from worker.devtools.simulator.throttler import token_tracker

EVENT_TYPE_BASE = 9_100


def company_key(n: int) -> str:
    return f"cal_test_company_{n:03d}"


def make_companies(db: Db, n: int) -> list[dict[str, Any]]:
    """n companies, each with a staff member, a 30-minute service on an event type of its own and a customer."""
    out = []
    with db.connect() as conn:
        for i in range(n):
            (company,) = conn.execute("SELECT tests.make_company(%s)", [f"Salon {i}"]).fetchone() or (None,)
            (staff,) = conn.execute(
                "SELECT tests.make_staff(%s, %s, %s)", [company, f"Stylist {i}", 7_500 + i]
            ).fetchone() or (None,)
            (service,) = conn.execute(
                "INSERT INTO services (company_id, name, duration_minutes, calcom_event_type_id) "
                "VALUES (%s, 'Schnitt', 30, %s) RETURNING id",
                [company, EVENT_TYPE_BASE + i],
            ).fetchone() or (None,)
            (customer,) = conn.execute(
                "SELECT tests.make_customer(%s, %s, %s)", [company, f"Kundin {i}", f"kundin{i}@mail.example"]
            ).fetchone() or (None,)
            out.append({"index": i, "company": company, "staff": staff, "service": service, "customer": customer})
        conn.commit()
    return out


def book_for(db: Db, c: dict[str, Any], slot: int) -> int:
    """An appointment of company c at its slot-th half hour from FUTURE (slots never overlap in one company)."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT tests.make_appointment(%s, %s, %s, %s)",
            [c["customer"], c["service"], c["staff"], FUTURE + dt.timedelta(minutes=30 * slot)],
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def write_key(root: Path, company_id: int, key: str, mode: int = 0o600) -> Path:
    folder = root / str(company_id)
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "calcom_api_key"
    tmp = folder / ".calcom_api_key.new"
    tmp.write_text(key + "\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)  # a rotation is one rename: a reader sees the old key or the new one
    return path


def credentials(root: Path, companies: list[dict[str, Any]], own: list[int]) -> dict[int, str]:
    """Key files for the companies at the indexes in `own`; the key each company books with (others: API_KEY)."""
    root.mkdir(mode=0o700, exist_ok=True)
    keys = {}
    for c in companies:
        key = company_key(c["index"]) if c["index"] in own else API_KEY
        if c["index"] in own:
            write_key(root, c["company"], key)
        keys[c["company"]] = key
    return keys


def accept_keys(sim: SimulatorProcess, keys: list[str], **config: Any) -> None:
    """The simulator accepts these keys (each counted on its own, as Cal.com counts per key)."""
    sim.set_config(api_keys=sorted({API_KEY, *keys}), **config)


def made_by(sim: SimulatorProcess, appointment_id: int) -> list[str | None]:
    """The tracker of the key that made each of the appointment's bookings at the simulator."""
    found = sim.bookings("calsync_appointment_id", str(appointment_id))
    return [b["_sim"]["madeBy"] for b in found if b["status"] not in ("cancelled", "rejected")]


def tracker(key: str) -> str:
    return token_tracker(key)


def rate_limited(sim: SimulatorProcess) -> dict[str, int]:
    return {who: int(c.get("rateLimited", 0)) for who, c in sim.stats().get("byKey", {}).items()}
