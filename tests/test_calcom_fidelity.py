"""The worker against Cal.com's real rules (calcom-api.md §8), as the simulator models them: every booking covers
exactly the salon's interval, outside reschedules are followed, ended and recurring bookings are handled."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import Db
from tests.worker_support import (
    FUTURE,
    active,
    appointment,
    attempts,
    book,
    drain,
    meta,
    outbox_left,
    salon,
    sim,
    simulator,
)
from worker.devtools.simulator import SimulatorProcess

__all__ = ["salon", "sim", "simulator"]  # fixtures

PERM_PHASES = {"A": 50, "B": 5, "C": 15, "D": 40}  # Dauerwelle's staff-required segments (minutes)
LENA_EVENT_TYPES = {"A": 8211, "B": 8221, "C": 8231, "D": 8241}  # calcom_event_map for Lena (tests.make_salon)


def keep_success_bodies(db: Db) -> None:
    """Archive successful exchanges in full too (revision 0020's setting), so a test can read what was sent."""
    with db.connect() as conn:
        conn.execute("UPDATE calsync.settings SET value = 'true' WHERE key = 'archive_success_bodies'")


def event_type(event_type_id: int, length: int, **more: Any) -> dict[str, Any]:
    return {
        "id": event_type_id,
        "lengthInMinutes": length,
        "hostUserId": event_type_id,
        "title": f"ET {event_type_id}",
        **more,
    }


def minutes(booking: dict[str, Any]) -> float:
    start = dt.datetime.fromisoformat(booking["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(booking["end"].replace("Z", "+00:00"))
    return (end - start).total_seconds() / 60


def _move(db: Db, appointment_id: int, by: str) -> None:
    """The salon moves the appointment (its phases follow)."""
    with db.connect() as conn:
        conn.execute(
            "UPDATE appointments SET starts_at = starts_at + %s::interval, ends_at = ends_at + %s::interval "
            "WHERE id = %s",
            [by, by, appointment_id],
        )
        conn.commit()


def _moved_at_calcom_then_by_the_salon(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], outside_to: dt.timedelta
) -> tuple[int, str]:
    """A synced cut that the customer moves at Cal.com (to FUTURE + outside_to) and the salon then moves by three
    hours; returns the appointment and the uid of the booking the customer's move made."""
    a = book(db, salon)
    drain(db, sim)
    [first] = active(meta(sim, a))
    outside = sim.reschedule_as(first["uid"], (FUTURE + outside_to).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    _move(db, a, "3 hours")
    return a, str(outside["booking"]["uid"])


def delivery(db: Db, appointment_id: int) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT d.status, d.last_category FROM calsync.outbox_delivery d "
            "JOIN calsync.outbox o ON o.id = d.outbox_id WHERE o.aggregateid = %s",
            [str(appointment_id)],
        ).fetchall()


def test_no_length_of_the_event_type_fits_books_nothing(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    """A 30-minute cut on a 20-minute event type would be booked as 20 minutes (the stylist free at Cal.com for
    the other 10): nothing is booked, the appointment names the drift and what to do."""
    sim.register_event_types([event_type(8001, 20)])
    a = book(db, salon)
    drain(db, sim)
    row = appointment(db, a)
    assert meta(sim, a) == [], "nothing booked"
    assert row["sync_error_code"] == "EVENT_TYPE_LENGTH" and row["calcom_sync_status"] == "failed"
    assert "give event type 8001 a length of 30 minutes" in row["sync_error_message"]
    with db.connect() as conn:
        found = conn.execute(
            "SELECT category, recommended_action FROM remediation.failed_syncs WHERE appointment_id = %s", [a]
        ).fetchone()
    assert found is not None and found[0] == "EVENT_TYPE_LENGTH", "listed for the DBA"


def test_a_multi_length_event_type_gets_the_exact_length_also_when_moved(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """lengthInMinutes only where the event type offers several lengths; a move keeps the length (Cal.com's API
    reschedule books the default length, so the booking is made again instead)."""
    sim.register_event_types([event_type(8001, 15, lengthInMinutesOptions=[15, 30, 45])])
    keep_success_bodies(db)  # the requests sent are read back from the archive
    a = book(db, salon)
    drain(db, sim)
    [booking] = active(meta(sim, a))
    assert minutes(booking) == 30
    create = next(x for x in attempts(db, a) if x["action"] == "create")
    assert create["request_body"]["lengthInMinutes"] == 30
    _move(db, a, "1 hour")
    drain(db, sim)
    [moved] = active(meta(sim, a))
    assert minutes(moved) == 30 and moved["uid"] != booking["uid"]
    assert moved["start"].startswith((FUTURE + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    assert appointment(db, a)["calcom_sync_status"] == "synced"


def test_a_fixed_length_event_type_gets_no_length_field(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    keep_success_bodies(db)
    a = book(db, salon)
    drain(db, sim)
    [booking] = active(meta(sim, a))
    assert minutes(booking) == 30
    assert "lengthInMinutes" not in next(x for x in attempts(db, a) if x["action"] == "create")["request_body"]


def test_exactly_once_whatever_the_lengths_after_a_false_negative(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """The reproduced incident: a composite whose event types default to 30 minutes, one create stored and answered
    400. Every phase ends up booked once, for exactly its interval; no orphan, nothing dead."""
    sim.register_event_types(
        [event_type(et, 30, lengthInMinutesOptions=sorted({30, PERM_PHASES[k]})) for k, et in LENA_EVENT_TYPES.items()]
    )
    sim.set_config(false_negative_rate=1.0)
    a = book(db, salon, service="perm")
    drain(db, sim)
    sim.set_config(false_negative_rate=0.0)
    with db.connect() as conn:
        conn.execute("UPDATE calsync.outbox_delivery SET next_attempt_at = now()")
        conn.commit()
    drain(db, sim)
    live = active(meta(sim, a))
    by_phase = sorted((b["eventTypeId"], minutes(b)) for b in live)
    assert by_phase == sorted((LENA_EVENT_TYPES[k], float(m)) for k, m in PERM_PHASES.items())
    assert appointment(db, a)["calcom_sync_status"] == "synced" and outbox_left(db) == 0


def test_an_outside_reschedule_is_followed_by_a_later_move_and_cancel(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """The customer moves the booking through Cal.com's e-mail link (a new uid). The salon then moves the
    appointment: the successor is moved, nothing booked twice. Then it cancels: the live successor is cancelled."""
    a, successor = _moved_at_calcom_then_by_the_salon(db, sim, salon, dt.timedelta(days=1))
    drain(db, sim)
    [moved] = active(meta(sim, a))
    assert moved["rescheduledFromUid"] == successor, "the live successor was moved, not the cancelled original"
    assert appointment(db, a)["calcom_v2_booking_uid"] == moved["uid"]
    sim.reschedule_as(moved["uid"], (FUTURE + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"), by="host")
    with db.connect() as conn:
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [a])
        conn.commit()
    drain(db, sim)
    assert active(meta(sim, a)) == [], "the host's successor is cancelled too"
    assert outbox_left(db) == 0


def _due_now(db: Db) -> None:
    """The retry is due later; make it due now."""
    with db.connect() as conn:
        conn.execute("UPDATE calsync.outbox_delivery SET next_attempt_at = now()")
        conn.commit()


def _interval(db: Db, appointment_id: int) -> tuple[dt.datetime, dt.datetime]:
    row = appointment(db, appointment_id)
    return row["starts_at"], row["ends_at"]


def _booked(booking: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    def at(v: str) -> dt.datetime:
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))

    return at(booking["start"]), at(booking["end"])


def test_a_failed_move_of_the_successor_is_retried_where_the_successor_is(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """The customer moved the booking at Cal.com (ten days on); the salon then moves the appointment. The worker
    finds the successor, but moving it fails (500). The next attempt must move the successor, not take it for in
    place: the successor used to be recorded without its time, and the retry, looking for bookings only around the
    salon's times, did not see it (the chaos soak's outside reschedule, then "move")."""
    a, successor = _moved_at_calcom_then_by_the_salon(db, sim, salon, dt.timedelta(days=10))
    sim.script_fault("reschedule", "none")  # the original's: Cal.com refuses it, it was moved
    sim.script_fault("reschedule", "fail_5xx")  # the successor's
    drain(db, sim)
    assert appointment(db, a)["sync_error_code"] == "SERVER_ERROR", "the scripted fault hit the successor's move"
    _due_now(db)
    drain(db, sim)
    [moved] = active(meta(sim, a))
    assert _booked(moved) == _interval(db, a), "the successor was moved to the salon's time"
    assert moved["rescheduledFromUid"] == successor
    assert appointment(db, a)["calcom_v2_booking_uid"] == moved["uid"] and outbox_left(db) == 0


@pytest.mark.parametrize("outside", [False, True], ids=["ours", "after_an_outside_reschedule"])
def test_a_move_booked_again_whose_create_failed_is_booked_on_the_next_attempt(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], outside: bool
) -> None:
    """A cut on a multi-length event type whose default is not the cut's length: a move is cancel + create. The first
    attempt fails at the cancel; the second finds the booking (discovery), cancels it, but its create fails (500).
    The third must book. The app's uid column used to name a cancelled booking then, which the third attempt took
    for the booking, in place (the chaos soak: "event_synced" with nothing booked): the one just cancelled (written
    back after it was cleared), or, after the customer had moved the booking at Cal.com, the one they moved away
    from (the second attempt cancelled its successor)."""
    sim.register_event_types([event_type(8001, 60, lengthInMinutesOptions=[30, 60, 90])])
    a = book(db, salon)
    drain(db, sim)
    [first] = active(meta(sim, a))
    if outside:  # within the discovery's window, so the second attempt finds the successor
        sim.reschedule_as(first["uid"], (FUTURE + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    _move(db, a, "1 day")
    sim.script_fault("cancel", "fail_5xx")
    sim.script_fault("create", "fail_5xx")
    for _ in range(2):
        drain(db, sim)
        assert appointment(db, a)["sync_error_code"] == "SERVER_ERROR"
        _due_now(db)
    tried = [(x["action"], x["response_status"]) for x in attempts(db, a)]
    want = [("create", 201), ("cancel", 500), ("discover", 200), ("cancel", 200), ("create", 500), ("lookup", 200)]
    assert tried == want, "the first attempt failed at the cancel, the second at the create"
    assert active(meta(sim, a)) == [], "the booking is cancelled, the new one not yet made"
    assert appointment(db, a)["calcom_v2_booking_uid"] is None, "the app names no cancelled booking"
    drain(db, sim)
    [booked] = active(meta(sim, a))
    assert booked["uid"] != first["uid"] and _booked(booked) == _interval(db, a)
    assert appointment(db, a)["calcom_v2_booking_uid"] == booked["uid"] and outbox_left(db) == 0


def test_a_composite_whose_phase_create_failed_after_its_cancel_books_that_phase_again(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """A Dauerwelle on event types that default to 30 minutes: each phase's move is cancel + create. The first
    attempt fails at its first cancel; the second finds the four bookings, cancels phase A's and fails to create it
    (500). Neither phase A nor the appointment (whose booking is its first staff-required phase's) may then name
    the cancelled booking, and the third attempt books phase A again: four bookings, each exactly its phase."""
    sim.register_event_types(
        [event_type(et, 30, lengthInMinutesOptions=sorted({30, PERM_PHASES[k]})) for k, et in LENA_EVENT_TYPES.items()]
    )
    a = book(db, salon, service="perm")
    drain(db, sim)
    before = {b["uid"] for b in active(meta(sim, a))}
    assert len(before) == 4
    _move(db, a, "1 day")
    sim.script_fault("cancel", "fail_5xx")
    sim.script_fault("create", "fail_5xx")
    for _ in range(2):
        drain(db, sim)
        assert appointment(db, a)["sync_error_code"] == "SERVER_ERROR"
        _due_now(db)
    with db.connect() as conn:
        named = {r[0] for r in conn.execute(
            "SELECT calcom_booking_uid FROM appointment_phases WHERE appointment_id = %s AND staff_required", [a]
        )} | {appointment(db, a)["calcom_v2_booking_uid"]}  # fmt: skip
    cancelled = before - {b["uid"] for b in active(meta(sim, a))}
    assert len(cancelled) == 1, "one phase's booking was cancelled for the move"
    assert not named & cancelled, "nothing in the app names the cancelled booking"
    drain(db, sim)
    with db.connect() as conn:
        phases = conn.execute(
            "SELECT start_time, end_time FROM appointment_phases WHERE appointment_id = %s AND staff_required", [a]
        ).fetchall()
    assert sorted(_booked(b) for b in active(meta(sim, a))) == sorted((s, e) for s, e in phases)
    assert appointment(db, a)["calcom_sync_status"] == "synced" and outbox_left(db) == 0


def test_cancelling_a_booking_that_has_ended_is_done(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    a = book(db, salon)
    drain(db, sim)
    sim.set_config(clock_offset_s=(FUTURE - dt.datetime.now(dt.UTC)).total_seconds() + 7200)  # it is over
    with db.connect() as conn:
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [a])
        conn.commit()
    drain(db, sim)
    assert any("already ended" in (x["response_body"] or "") for x in attempts(db, a)), "Cal.com refused it"
    assert outbox_left(db) == 0 and delivery(db, a) == [], "done, not dead"


def test_a_recurring_event_type_is_refused_and_its_series_cancelled(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    sim.register_event_types(
        [event_type(8001, 30, recurrence={"frequency": "weekly", "interval": 1, "occurrences": 3})]
    )
    a = book(db, salon)
    drain(db, sim)
    row = appointment(db, a)
    assert row["sync_error_code"] == "RECURRING_EVENT_TYPE"
    assert len(meta(sim, a)) == 3 and active(meta(sim, a)) == [], "no orphan occurrence"
    assert delivery(db, a) == [("dead", "RECURRING_EVENT_TYPE")]


def test_national_phones_are_sent_in_e164_and_invalid_ones_are_findings(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """Cal.com refuses "030 1234567" ({attendeePhoneNumber}invalid_number): it is sent as +49301234567. A phone that
    is no valid number is never sent, and the customer is listed with the stored value; the booking still goes out
    with the customer's e-mail. A refused e-mail is replaced by the placeholder and kept as it is."""
    with db.connect() as conn:
        national = conn.execute(
            "SELECT tests.make_customer(%s, 'Nationale', 'nationale@mail.example', '030 1234567')", [salon["company"]]
        ).fetchone()[0]  # type: ignore[index]
        broken = conn.execute(
            "SELECT tests.make_customer(%s, 'Kaputt', 'frau.klein@web', '0301')", [salon["company"]]
        ).fetchone()[0]  # type: ignore[index]
        conn.commit()
    a = book(db, salon, customer=national)
    b = book(db, salon, customer=broken, start=FUTURE + dt.timedelta(hours=3))
    drain(db, sim)
    [first] = active(meta(sim, a))
    assert first["attendees"][0]["phoneNumber"] == "+49301234567"
    [second] = active(meta(sim, b))
    assert "phoneNumber" not in second["attendees"][0] and second["attendees"][0]["email"].endswith(
        "@placeholder.invalid"
    )
    assert appointment(db, a)["calcom_sync_status"] == appointment(db, b)["calcom_sync_status"] == "synced"
    with db.connect() as conn:
        findings = conn.execute(
            "SELECT customer_id, field, stored_value FROM remediation.customers_with_invalid_contact ORDER BY 2"
        ).fetchall()
        email = conn.execute("SELECT email FROM customers WHERE id = %s", [broken]).fetchone()
    assert (broken, "email", "frau.klein@web") in findings and (broken, "phone", "0301") in findings
    assert not any(f[0] == national for f in findings)
    assert email == ("frau.klein@web",), "the stored value is kept"
