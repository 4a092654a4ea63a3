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

        with db.connect() as conn:  # the app cancels it, touching nothing but the status
            conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [a])
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


def test_duplicated_and_reordered_deliveries_still_apply_once_in_order(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """The simulator duplicates and holds back deliveries (its seeded faults): two reschedules and a cancel by the
    customer end as one cancelled appointment on the last booking, every redelivery a duplicate."""
    with ReceiverProcess(db) as receiver:
        sim.set_config(webhook_duplicate_rate=0.4, webhook_reorder_rate=0.4, webhook_reorder_hold_s=0.3)
        try:
            sim.register_webhooks([{"id": "calsync", "subscriberUrl": receiver.url + "/webhooks/calcom",
                                    "triggers": TRIGGERS, "secret": SECRET}])  # fmt: skip
            a = book(db, salon, start=FUTURE)
            drain(db, sim)
            uid = appointment(db, a)["calcom_v2_booking_uid"]
            second = sim.reschedule_as(uid, iso(FUTURE + dt.timedelta(hours=3)))["booking"]["uid"]
            third = sim.reschedule_as(second, iso(FUTURE + dt.timedelta(hours=5)))["booking"]["uid"]
            sim.cancel_as(third, reason="doch nicht")
            wait_for("the cancel", lambda: appointment(db, a)["status"] == "cancelled", timeout_s=30)

            def all_stored() -> bool:  # every delivery the simulator sent (with its duplicates) was answered 200
                sent = sim.webhook_deliveries(subscriptionId="calsync")
                return (
                    sim.stats()["webhooks"]["queued"] == 0
                    and len(outcomes(db)) == len(sent)
                    and all(d["status"] == 200 for d in sent)
                )

            wait_for("every delivery", all_stored, timeout_s=30)
            sent = sim.webhook_deliveries(subscriptionId="calsync")
        finally:
            sim.set_config(webhook_duplicate_rate=0, webhook_reorder_rate=0)
    row = appointment(db, a)
    assert (row["calcom_v2_booking_uid"], row["starts_at"]) == (third, FUTURE + dt.timedelta(hours=5))
    assert row["metadata"]["calcom_cancellation"]["reason"] == "doch nicht"
    faults = [d["fault"] for d in sent]
    assert "duplicate" in faults and "reorder" in faults, f"the faults did not happen: {faults}"
    got = outcomes(db)
    assert sum(1 for _, o in got if o != "duplicate") == 4, got  # the create's echo, two moves, the cancel
    assert sum(1 for _, o in got if o == "duplicate") == sum(1 for d in sent if d["fault"] == "duplicate"), (got, sent)
    assert outbox_left(db) == 0
