"""End to end, every part a real process or server: the simulator (a separate process) sends Cal.com's webhooks
to `calsync webhooks` (a separate process), the worker books and cancels. The customer reschedules at Cal.com →
our appointment moves → the app then cancels it → Cal.com cancels the successor booking."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import Db
from tests.webhook_support import SECRET, ReceiverProcess, iso
from tests.worker_support import FUTURE, active, appointment, book, drain, meta, outbox_left, salon, sim, simulator
from worker.devtools.simulator import SimulatorProcess

__all__ = ["salon", "sim", "simulator"]  # fixtures
TRIGGERS = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def outcomes(db: Db) -> list[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute("SELECT trigger_event, outcome FROM calsync.webhook_deliveries ORDER BY id").fetchall()
    return [(str(t), str(o)) for t, o in rows]


def test_customer_reschedule_reaches_the_appointment_and_the_app_cancel_cancels_the_successor(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    with ReceiverProcess(db) as receiver:
        sim.register_webhooks([{"id": "calsync", "subscriberUrl": receiver.url + "/webhooks/calcom",
                                "triggers": TRIGGERS, "secret": SECRET}])  # fmt: skip
        a = book(db, salon, start=FUTURE)
        drain(db, sim)
        first_uid = appointment(db, a)["calcom_v2_booking_uid"]
        assert first_uid, "the worker booked the appointment"
        wait_for("the create's webhook", lambda: ("BOOKING_CREATED", "already_applied") in outcomes(db))

        moved = FUTURE + dt.timedelta(days=1, hours=2)
        answer = sim.reschedule_as(first_uid, iso(moved), by="attendee", reason="passt besser")
        successor = answer["booking"]["uid"]
        wait_for("the appointment to move", lambda: appointment(db, a)["starts_at"] == moved)
        row = appointment(db, a)
        assert row["calcom_v2_booking_uid"] == successor and row["sync_origin"] == "calcom"
        assert outbox_left(db) == 0, "the change from Cal.com echoed into the outbox"

        with db.connect() as conn:  # the app cancels, as the app does: naming its own origin
            conn.execute("UPDATE appointments SET status = 'cancelled', sync_origin = 'admin' WHERE id = %s", [a])
            conn.commit()
        drain(db, sim)
        by_uid = {b["uid"]: b for b in meta(sim, a)}
        assert by_uid[successor]["status"] == "cancelled", "Cal.com cancelled the successor booking"
        assert active(list(by_uid.values())) == [], "no live booking is left for the cancelled appointment"
        wait_for("the cancel's echo", lambda: ("BOOKING_CANCELLED", "already_applied") in outcomes(db))
        assert appointment(db, a)["requires_manual_review"] is False
        assert receiver.proc is not None and receiver.proc.poll() is None
    with db.connect() as conn:
        stored = conn.execute("SELECT count(*) FROM calsync.webhook_deliveries WHERE body LIKE %s",
                              [f"%{SECRET}%"]).fetchone()  # fmt: skip
        assert stored == (0,)
        assert conn.execute("SELECT count(*) FROM calsync.integrity_issues WHERE resolved_at IS NULL").fetchone() == (
            0,
        )
