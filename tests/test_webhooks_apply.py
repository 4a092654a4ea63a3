"""Cal.com's changes applied to the app's tables through calsync.receive_webhook (the receiver's one SQL call),
on a real database: each trigger's effect, no echo into the outbox, replays, out-of-order deliveries, refusals and
the conflict with a concurrent app change (two real connections)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any

import psycopg
import pytest

from tests.conftest import Db
from tests.webhook_support import body, cancel, deliver, outbox, reschedule, synced
from worker.db import query
from worker.webhooks import contract

START = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0) + dt.timedelta(days=20)


@pytest.fixture
def salon(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute("SELECT tests.make_salon()").fetchone()
    conn.commit()
    assert row is not None
    return dict(row[0])


def book(conn: psycopg.Connection[Any], salon: dict[str, Any], start: dt.datetime = START, uid: str = "uid-1",
         customer: int | None = None) -> int:  # fmt: skip
    row = conn.execute(
        "SELECT tests.make_appointment(%s, %s, %s, %s)",
        [customer or salon["customer"], salon["cut"], salon["lena"], start],
    ).fetchone()
    conn.commit()
    assert row is not None
    appointment_id = int(row[0])
    synced(conn, appointment_id, uid)
    return appointment_id


def appointment(conn: psycopg.Connection[Any], appointment_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute("SELECT * FROM appointments WHERE id = %s", [appointment_id]).fetchone()
    assert row is not None
    return dict(row)


def open_issues(conn: psycopg.Connection[Any], appointment_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT rule FROM calsync.integrity_issues WHERE row_id = %s AND table_name = 'appointments' "
        "AND resolved_at IS NULL ORDER BY id",
        [appointment_id],
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_reschedule_moves_the_appointment_and_stores_the_successor_without_an_echo(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    before = appointment(conn, a)
    new_start = START + dt.timedelta(days=1, hours=2)
    got = deliver(
        conn, reschedule("uid-1", "uid-2", new_start, bookingId=77, metadata={"calsync_appointment_id": str(a)})
    )
    assert (got["outcome"], got["appointment_id"]) == ("applied", a), got
    after = appointment(conn, a)
    assert after["starts_at"] == new_start and after["ends_at"] == new_start + dt.timedelta(minutes=30)
    assert (after["calcom_v2_booking_uid"], after["calcom_v2_booking_id"]) == ("uid-2", "77")
    assert after["sync_origin"] == "calcom" and after["version"] == before["version"] + 1
    assert after["metadata"]["calcom_reschedule"]["from_uid"] == "uid-1"
    row = conn.execute("SELECT uid, start_at FROM calsync.synced_bookings WHERE appointment_id = %s", [a]).fetchone()
    assert row == ("uid-2", new_start)
    assert outbox(conn, a) == [], "a change from Cal.com must not go back to Cal.com"


def test_a_second_change_from_calcom_does_not_echo_and_the_apps_next_change_is_synced(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    """sync_origin keeps 'calcom' after the first change from Cal.com. A second one (the row already marked) still
    enqueues nothing (the apply functions write as calsync.writer = 'calcom'); the app's own next change, which
    leaves sync_origin as it is, is synced: it was dropped for ever when the column alone decided."""
    a = book(conn, salon)
    for old, new, days in (("uid-1", "uid-2", 1), ("uid-2", "uid-3", 2)):
        got = deliver(conn, reschedule(old, new, START + dt.timedelta(days=days)))
        assert got["outcome"] == "applied", got
        assert outbox(conn, a) == [], f"the change from Cal.com to {new} echoed"
    assert appointment(conn, a)["sync_origin"] == "calcom"
    conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [a])
    conn.commit()
    assert outbox(conn, a) == ["cancel"], "the app's cancel of an appointment Cal.com moved goes to Cal.com"


def test_a_cancel_cancels_with_the_reason_and_who_cancelled(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    got = deliver(conn, cancel("uid-1", reason="Ich bin krank", by="hans.schuster@mail.example"))
    assert got["outcome"] == "applied", got
    after = appointment(conn, a)
    assert (after["status"], after["sync_origin"]) == ("cancelled", "calcom")
    assert after["metadata"]["calcom_cancellation"]["reason"] == "Ich bin krank"
    assert after["metadata"]["calcom_cancellation"]["cancelled_by"] == "hans.schuster@mail.example"
    assert outbox(conn, a) == []
    # the echo of a cancel (or a second cancel of the same booking) changes nothing
    assert deliver(conn, body("BOOKING_CANCELLED", "uid-1", status="CANCELLED"))["outcome"] == "duplicate"


def test_a_redelivery_is_a_no_op_even_with_a_new_created_at(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    first = reschedule("uid-1", "uid-2", START + dt.timedelta(hours=3))
    assert deliver(conn, first)["outcome"] == "applied"
    version = appointment(conn, a)["version"]
    again = deliver(conn, first)
    later = body("BOOKING_RESCHEDULED", "uid-2", created_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
                 rescheduleUid="uid-1", startTime=START + dt.timedelta(hours=3))  # fmt: skip
    rebuilt = deliver(conn, later)
    assert again["outcome"] == rebuilt["outcome"] == "duplicate"
    assert appointment(conn, a)["version"] == version, "a redelivery changed the appointment"
    rows = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE duplicate_of IS NOT NULL) FROM calsync.webhook_deliveries"
    ).fetchone()
    assert rows == (3, 2), "every delivery is kept, the redeliveries pointing at the first"


def test_a_cancel_of_the_successor_arriving_first_is_parked_then_applied(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    moved = START + dt.timedelta(days=2)
    early = deliver(conn, cancel("uid-3"))
    assert early["outcome"] == "parked", early
    # a chain out of order: uid-2 -> uid-3 comes before uid-1 -> uid-2
    assert deliver(conn, reschedule("uid-2", "uid-3", moved + dt.timedelta(hours=1)))["outcome"] == "parked"
    assert appointment(conn, a)["status"] == "confirmed"
    assert deliver(conn, reschedule("uid-1", "uid-2", moved))["outcome"] == "applied"
    after = appointment(conn, a)
    assert after["status"] == "cancelled", "the parked deliveries were applied, in order, once their booking was known"
    assert after["calcom_v2_booking_uid"] == "uid-3" and after["starts_at"] == moved + dt.timedelta(hours=1)
    rows = conn.execute("SELECT outcome FROM calsync.webhook_deliveries ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["applied", "applied", "applied"]
    assert outbox(conn, a) == []


def test_a_parked_delivery_is_retried_by_time_and_gives_up_as_unmatched(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    got = deliver(conn, cancel("uid-never"))
    assert got["outcome"] == "parked"
    n = conn.execute("SELECT calsync.retry_parked_webhooks(now() + interval '1 hour')").fetchone()
    assert n == (0,)
    conn.execute("SELECT calsync.retry_parked_webhooks(now() + interval '2 days')")
    conn.commit()
    row = conn.execute(
        "SELECT outcome, attempts FROM calsync.webhook_deliveries WHERE id = %s", [got["delivery_id"]]
    ).fetchone()
    assert row is not None and row[0] == "unmatched" and row[1] >= 2
    shown = conn.execute("SELECT outcome FROM remediation.refused_calcom_changes").fetchall()
    assert shown == [("unmatched",)]


def test_a_reschedule_onto_a_busy_host_is_refused_recorded_and_flagged(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    busy_at = START + dt.timedelta(days=1)
    other = conn.execute("SELECT tests.make_customer(%s, 'Ada Lovelace')", [salon["company"]]).fetchone()
    assert other is not None
    book(conn, salon, start=busy_at, uid="uid-other", customer=int(other[0]))
    got = deliver(conn, reschedule("uid-1", "uid-2", busy_at))
    assert got["outcome"] == "refused" and "host_busy_time_no_overlap" in got["detail"], got
    after = appointment(conn, a)
    assert after["starts_at"] == START and after["calcom_v2_booking_uid"] == "uid-1", "the refused move was applied"
    assert after["requires_manual_review"]
    assert open_issues(conn, a) == ["calcom_change_keeps_the_rules"]
    view = conn.execute(
        "SELECT outcome, appointment_id, recommended_action FROM remediation.refused_calcom_changes"
    ).fetchall()
    assert [(v[0], v[1]) for v in view] == [("refused", a)] and view[0][2]
    assert outbox(conn, a) == []


def test_a_booking_that_is_not_ours_is_listed_not_imported(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    count = conn.execute("SELECT count(*) FROM appointments").fetchone()
    ours = body("BOOKING_CREATED", "uid-1", metadata={"calsync_appointment_id": str(a)})
    assert deliver(conn, ours)["outcome"] == "already_applied"
    theirs = body("BOOKING_CREATED", "walk-in-1", bookingId=9, eventTypeId=8001, startTime=START, endTime=START)
    assert deliver(conn, theirs)["outcome"] == "listed"
    assert conn.execute("SELECT count(*) FROM appointments").fetchone() == count, "a foreign booking was imported"
    assert conn.execute("SELECT uid FROM remediation.calcom_bookings_without_appointment").fetchall() == [
        ("walk-in-1",)
    ]
    assert deliver(conn, reschedule("walk-in-1", "walk-in-2", START + dt.timedelta(hours=5)))["outcome"] == "listed"
    assert conn.execute("SELECT uid FROM remediation.calcom_bookings_without_appointment").fetchall() == [
        ("walk-in-2",)
    ]
    assert deliver(conn, cancel("walk-in-2"))["outcome"] == "listed"
    assert conn.execute("SELECT count(*) FROM remediation.calcom_bookings_without_appointment").fetchone() == (0,)


def test_an_unknown_trigger_is_stored_and_changes_nothing(conn: psycopg.Connection[Any], salon: dict[str, Any]) -> None:
    a = book(conn, salon)
    before = appointment(conn, a)
    got = deliver(conn, body("MEETING_ENDED", "uid-1"))
    assert got["outcome"] == "ignored"
    assert deliver(conn, body("BOOKING_SOMETHING_NEW", "uid-1"))["outcome"] == "ignored"
    assert appointment(conn, a) == before
    assert conn.execute("SELECT count(*) FROM calsync.webhook_deliveries").fetchone() == (2,)


def moved_by_the_app(conn: psycopg.Connection[Any], appointment_id: int, to: dt.datetime) -> dt.datetime:
    """The app moves the appointment (an admin's change, not synced to Cal.com yet)."""
    conn.execute("UPDATE appointments SET starts_at = %s, ends_at = %s + interval '30 minutes', sync_origin = 'admin' "
                 "WHERE id = %s", [to, to, appointment_id])  # fmt: skip
    conn.commit()
    return to


def test_an_undelivered_app_change_wins_and_the_calcom_change_is_recorded(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    app_time = moved_by_the_app(conn, a, START + dt.timedelta(days=3))
    got = deliver(conn, reschedule("uid-1", "uid-2", START + dt.timedelta(days=4)))
    assert got["outcome"] == "conflict", got
    after = appointment(conn, a)
    assert after["starts_at"] == app_time and after["requires_manual_review"]
    assert open_issues(conn, a) == ["calcom_change_loses_to_newer_app_change"]
    assert outbox(conn, a) == ["reschedule"], "the app's change still goes to Cal.com"


def test_a_second_refused_change_joins_the_open_issue_and_is_stored(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    """Two Cal.com changes of one appointment refused for the same reason (the customer moved it twice while the
    app's change was on its way): both are stored and answered, and the one open issue names both deliveries
    (before revision 0028 the second broke integrity_issues_one_open_per_rule_and_row and was not stored)."""
    a = book(conn, salon)
    app_time = moved_by_the_app(conn, a, START + dt.timedelta(days=3))
    first = deliver(conn, reschedule("uid-1", "uid-2", START + dt.timedelta(days=4)))
    second = deliver(conn, reschedule("uid-1", "uid-3", START + dt.timedelta(days=5)))
    assert (first["outcome"], second["outcome"]) == ("conflict", "conflict"), (first, second)
    assert open_issues(conn, a) == ["calcom_change_loses_to_newer_app_change"]
    row = conn.execute(
        "SELECT detail FROM calsync.integrity_issues WHERE row_id = %s AND resolved_at IS NULL", [a]
    ).fetchone()
    assert row is not None
    for got in (first, second):
        assert f"webhook delivery {got['delivery_id']}" in row[0], row[0]
    stored = conn.execute("SELECT count(*) FROM calsync.webhook_deliveries WHERE outcome = 'conflict'").fetchone()
    assert stored == (2,)
    assert appointment(conn, a)["starts_at"] == app_time


def test_concurrent_app_and_calcom_changes_the_version_check_decides(db: Db, salon: dict[str, Any]) -> None:
    """The app's transaction holds the row when the delivery arrives; it commits first and wins (40001 for the
    delivery's update, recorded as a conflict), with two real connections."""
    with db.connect() as setup:
        a = book(setup, salon)
    app_time = START + dt.timedelta(days=5)
    result: dict[str, Any] = {}
    with db.connect() as app_conn, db.connect() as hook_conn:
        app_conn.execute("UPDATE appointments SET starts_at = %s, ends_at = %s + interval '30 minutes', "
                         "sync_origin = 'admin' WHERE id = %s", [app_time, app_time, a])  # fmt: skip
        pid = hook_conn.info.backend_pid

        def run() -> None:
            result.update(deliver(hook_conn, reschedule("uid-1", "uid-2", START + dt.timedelta(days=6))))

        t = threading.Thread(target=run)
        t.start()
        deadline = time.monotonic() + 10
        while True:
            row = app_conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            if row and row[0] == "Lock":
                break
            assert time.monotonic() < deadline, "the delivery never waited for the app's row lock"
            time.sleep(0.01)
        app_conn.commit()
        t.join(10)
    assert result["outcome"] == "conflict" and "version check" in result["detail"], result
    with db.connect() as check:
        after = appointment(check, a)
        assert after["starts_at"] == app_time and after["calcom_v2_booking_uid"] == "uid-1"
        assert after["requires_manual_review"]
        assert open_issues(check, a) == ["calcom_change_loses_to_newer_app_change"]


def test_a_reschedule_the_worker_is_working_on_waits_for_its_result(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    """The echo of the worker's own reschedule can arrive before the worker recorded it: it is parked while the
    worker holds the appointment, then found already applied."""
    a = book(conn, salon)
    moved = START + dt.timedelta(days=1)
    conn.execute("SET calsync.writer = 'worker'")
    conn.execute("INSERT INTO calsync.outbox (aggregatetype, aggregateid, type, payload) "
                 "VALUES ('appointment', %s, 'reschedule', '{}') ", [str(a)])  # fmt: skip
    conn.execute("INSERT INTO calsync.outbox_delivery (outbox_id, aggregateid, status, locked_by, locked_until, "
                 "covers_seq) SELECT id, aggregateid, 'running', 'w1', now() + interval '5 minutes', seq "
                 "FROM calsync.outbox WHERE aggregateid = %s", [str(a)])  # fmt: skip
    conn.commit()
    got = deliver(conn, reschedule("uid-1", "uid-2", moved))
    assert got["outcome"] == "parked", got
    # the worker records its result: the appointment is at the new time with booking uid-2, the event delivered
    conn.execute("UPDATE appointments SET starts_at = %s, ends_at = %s + interval '30 minutes', "
                 "calcom_v2_booking_uid = 'uid-2' WHERE id = %s", [moved, moved, a])  # fmt: skip
    conn.execute("DELETE FROM calsync.outbox_delivery WHERE aggregateid = %s", [str(a)])
    conn.execute("DELETE FROM calsync.outbox WHERE aggregateid = %s", [str(a)])
    conn.execute("RESET calsync.writer")
    conn.commit()
    conn.execute("SELECT calsync.retry_parked_webhooks(now() + interval '1 minute')")
    conn.commit()
    row = conn.execute("SELECT outcome FROM calsync.webhook_deliveries WHERE id = %s", [got["delivery_id"]]).fetchone()
    assert row == ("already_applied",)
    assert open_issues(conn, a) == []


def test_a_batch_is_the_same_as_one_call_each(conn: psycopg.Connection[Any], salon: dict[str, Any]) -> None:
    a = book(conn, salon)
    raws = [body("BOOKING_CREATED", "walk-in-9"), body("BOOKING_CREATED", "walk-in-9"),
            reschedule("uid-1", "uid-2", START + dt.timedelta(hours=6)), cancel("uid-2")]  # fmt: skip
    items = []
    for raw in raws:
        event = contract.parse(raw)
        items.append({"event": json.loads(contract.encode(event)), "body": raw.decode(), "headers": {},
                      "signature": "valid"})  # fmt: skip
    rows = conn.execute(query("webhook_receive_batch"), {"deliveries": json.dumps(items)}).fetchall()  # type: ignore[arg-type]
    conn.commit()
    assert [(r[0], r[2]) for r in rows] == [(1, "listed"), (2, "duplicate"), (3, "applied"), (4, "applied")]
    assert appointment(conn, a)["status"] == "cancelled"


def test_a_composite_moves_as_a_whole_and_a_cancelled_phase_cancels_it(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    row = conn.execute(
        "SELECT tests.make_appointment(%s, %s, %s, %s)", [salon["customer"], salon["perm"], salon["lena"], START]
    ).fetchone()
    conn.commit()
    assert row is not None
    a = int(row[0])
    phases = conn.execute(
        "SELECT id, start_time FROM appointment_phases WHERE appointment_id = %s AND staff_required "
        "ORDER BY sequence_order",
        [a],
    ).fetchall()
    assert len(phases) == 4
    conn.execute("SET calsync.writer = 'worker'")
    for pid, _ in phases:
        conn.execute("UPDATE appointment_phases SET calcom_booking_uid = %s, calcom_booking_id = %s WHERE id = %s",
                     [f"p-{pid}", 5000 + pid, pid])  # fmt: skip
    conn.execute("UPDATE appointments SET calcom_v2_booking_uid = %s, calcom_sync_status = 'synced' WHERE id = %s",
                 [f"p-{phases[0][0]}", a])  # fmt: skip
    conn.execute("DELETE FROM calsync.outbox WHERE aggregateid = %s", [str(a)])
    conn.execute("RESET calsync.writer")
    conn.commit()
    second, second_start = phases[1]
    got = deliver(conn, reschedule(f"p-{second}", "p-moved", second_start + dt.timedelta(days=1), minutes=5))
    assert got["outcome"] == "applied", got
    after = appointment(conn, a)
    assert after["starts_at"] == START + dt.timedelta(days=1), "the appointment moved by as much as its phase"
    moved = conn.execute(
        "SELECT calcom_booking_uid, start_time FROM appointment_phases WHERE id = %s", [second]
    ).fetchone()
    assert moved == ("p-moved", second_start + dt.timedelta(days=1)), "the phases followed, the successor stored"
    assert outbox(conn, a) == ["reschedule"], "the other phases' bookings follow at Cal.com"
    conn.execute("DELETE FROM calsync.outbox WHERE aggregateid = %s", [str(a)])  # the worker delivered it
    conn.commit()
    third = phases[2][0]
    assert deliver(conn, cancel(f"p-{third}"))["outcome"] == "applied"
    assert appointment(conn, a)["status"] == "cancelled", "a cancelled required phase cancels the whole appointment"
    assert outbox(conn, a) == ["cancel"], "the other phases' bookings are cancelled by the worker"


def test_the_receivers_role_stores_and_applies_and_does_nothing_else(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    """calsync_webhooks (the receiver's role) runs the entry functions, which apply as the schema's owner; it can
    touch no table of the app, read no stored body, and not choose the time a delivery is stored at."""
    a = book(conn, salon)
    conn.execute("SET ROLE calsync_webhooks")
    conn.commit()
    got = deliver(conn, reschedule("uid-1", "uid-2", START + dt.timedelta(days=1)))
    assert got["outcome"] == "applied", got
    assert conn.execute("SELECT count(*) FROM calsync.retry_parked_webhooks()").fetchone() is not None
    parked = conn.execute("SELECT count(*) FROM calsync.webhook_deliveries WHERE outcome = 'parked'").fetchone()
    assert parked == (0,), "the health endpoint's query runs as the role"
    assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,), "and the head check at start"
    conn.commit()
    refused = [
        "UPDATE appointments SET status = 'cancelled'",
        "SELECT body FROM calsync.webhook_deliveries",
        "SELECT * FROM calsync.apply_webhook(1)",
        "SELECT * FROM calsync.retry_parked_webhooks(now() + interval '1 day')",
    ]
    for statement in refused:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)  # type: ignore[arg-type]
        conn.rollback()
    conn.execute("RESET ROLE")
    conn.commit()
    assert appointment(conn, a)["starts_at"] == START + dt.timedelta(days=1)


BREAK_CANCELS = """
CREATE FUNCTION pg_temp.no_cancels() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'the test forbids cancelling appointment %', NEW.id USING ERRCODE = '55000';
END
$f$;
CREATE TRIGGER appointments_test_forbids_cancels BEFORE UPDATE OF status ON appointments
    FOR EACH ROW WHEN (NEW.status = 'cancelled') EXECUTE FUNCTION pg_temp.no_cancels();
"""


def test_an_apply_that_fails_keeps_the_delivery_parked_with_the_error_and_retries_it(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    """An error the apply functions do not expect (here a trigger of the app's with its own SQLSTATE) rolls back
    the delivery's effects only: the delivery is stored, parked with the error, the deliveries beside it in the
    batch are applied, the timer's retry of it fails alone and, once the cause is gone, applies it."""
    a = book(conn, salon)
    conn.execute(BREAK_CANCELS)
    conn.commit()
    batch = [cancel("uid-1"), body("BOOKING_CREATED", "walk-in-7", startTime=START, endTime=START)]
    doc = [{"event": json.loads(contract.encode(contract.parse(raw))), "body": raw.decode(), "headers": {},
            "signature": "valid"} for raw in batch]  # fmt: skip
    rows = conn.execute(query("webhook_receive_batch"), {"deliveries": json.dumps(doc)}).fetchall()  # type: ignore[arg-type]
    conn.commit()
    assert [r[2] for r in rows] == ["parked", "listed"], rows
    failed = rows[0]
    assert "SQLSTATE 55000" in failed[3] and "the test forbids cancelling" in failed[3], failed[3]
    assert appointment(conn, a)["status"] == "confirmed", "the failed cancel's effects were not rolled back"
    stored = conn.execute(
        "SELECT outcome, attempts, next_attempt_at > now() FROM calsync.webhook_deliveries WHERE id = %s", [failed[1]]
    ).fetchone()
    assert stored == ("parked", 1, True)
    # the timer: the failing delivery fails alone, another parked one due beside it settles
    later = START + dt.timedelta(days=4)
    other = deliver(conn, reschedule("uid-b1", "uid-b2", later + dt.timedelta(hours=2)))
    assert other["outcome"] == "parked"
    b = book(conn, salon, start=later, uid="uid-b1")  # recorded by the worker: no delivery retries it now
    settled = conn.execute("SELECT calsync.retry_parked_webhooks(now() + interval '1 hour')").fetchone()
    conn.commit()
    assert settled == (1,), "the failing delivery took the timer's batch down with it"
    again = conn.execute(
        "SELECT outcome, attempts FROM calsync.webhook_deliveries WHERE id = %s", [failed[1]]
    ).fetchone()
    assert again == ("parked", 2)
    assert appointment(conn, b)["calcom_v2_booking_uid"] == "uid-b2"
    conn.execute("DROP TRIGGER appointments_test_forbids_cancels ON appointments")
    conn.commit()
    conn.execute("SELECT calsync.retry_parked_webhooks(now() + interval '2 hours')")
    conn.commit()
    assert conn.execute("SELECT outcome FROM calsync.webhook_deliveries WHERE id = %s", [failed[1]]).fetchone() == (
        "applied",
    )
    assert appointment(conn, a)["status"] == "cancelled"


def test_an_apply_that_keeps_failing_is_refused_and_recorded_on_its_appointment(
    conn: psycopg.Connection[Any], salon: dict[str, Any]
) -> None:
    a = book(conn, salon)
    conn.execute(BREAK_CANCELS)
    conn.commit()
    got = deliver(conn, cancel("uid-1"))
    assert got["outcome"] == "parked" and got["appointment_id"] == a, got
    conn.execute("SELECT calsync.retry_parked_webhooks(now() + interval '2 days')")
    conn.commit()
    row = conn.execute(
        "SELECT outcome, detail FROM calsync.webhook_deliveries WHERE id = %s", [got["delivery_id"]]
    ).fetchone()
    assert row is not None and row[0] == "refused" and "gave up after 2 attempts" in row[1], row
    assert open_issues(conn, a) == ["calcom_change_keeps_the_rules"]
    assert appointment(conn, a)["requires_manual_review"] and appointment(conn, a)["status"] == "confirmed"
    shown = conn.execute("SELECT outcome, appointment_id FROM remediation.refused_calcom_changes").fetchall()
    assert shown == [("refused", a)]
