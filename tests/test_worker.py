"""The worker against the Cal.com simulator over real HTTP, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Db
from tests.worker_support import (
    API_KEY,
    FUTURE,
    active,
    appointment,
    attempts,
    book,
    drain,
    meta,
    outbox_left,
    salon,
    settings,
    sim,
    simulator,
)
from worker.devtools.simulator import SimulatorProcess
from worker.errors import CliError, Exit
from worker.sync import recording as recording_module
from worker.sync.contract import SyncResult
from worker.sync.drain import Worker

__all__ = ["salon", "sim", "simulator"]  # fixtures


def walk_in(sim: SimulatorProcess, start: dt.datetime, event_type_id: int) -> None:
    """A booking made at Cal.com directly (not through us)."""
    body = {
        "start": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "eventTypeId": event_type_id,
        "attendee": {"name": "Walk-in", "email": "walk@in.example", "timeZone": "UTC"},
    }
    r = httpx.post(f"{sim.base_url}/v2/bookings", headers={"cal-api-version": "2024-08-13"}, json=body)
    assert r.status_code == 201, r.text


def test_single_appointment_is_booked_once(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    a = book(db, salon)
    drain(db, sim)
    [booking] = meta(sim, a)
    row = appointment(db, a)
    assert (row["calcom_sync_status"], row["calcom_v2_booking_uid"]) == ("synced", booking["uid"])
    assert row["calcom_booking_id"] == booking["id"]
    assert booking["eventTypeId"] == 8001 and booking["start"].startswith(FUTURE.strftime("%Y-%m-%dT%H:%M"))
    assert booking["attendees"][0]["email"] == "hans.schuster@mail.example"
    assert booking["bookingFieldsResponses"]["title"] == "Herrenhaarschnitt"
    [attempt] = attempts(db, a)
    assert (attempt["action"], attempt["response_status"], attempt["category"]) == ("create", 201, "OK")
    # a success is archived as what traces it (revision 0020): status, request id, uid, latency and sizes
    assert (attempt["booking_uid"], attempt["bodies_kept"]) == (booking["uid"], False)
    assert attempt["response_headers"] is None or set(attempt["response_headers"]) == {"x-request-id"}
    assert attempt["request_body"] is None and attempt["response_body"] is None
    assert attempt["response_size"] > 0 and attempt["request_size"] > 0 and attempt["duration_ms"] >= 0
    assert outbox_left(db) == 0


def test_successes_are_archived_in_full_when_the_setting_asks(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    with db.connect() as conn:
        conn.execute("UPDATE calsync.settings SET value = 'true' WHERE key = 'archive_success_bodies'")
    a = book(db, salon)
    drain(db, sim)
    [booking] = meta(sim, a)
    [attempt] = attempts(db, a)
    assert json.loads(attempt["response_body"])["data"]["uid"] == booking["uid"], "the response is archived in full"
    assert attempt["request_body"]["metadata"] == {"calsync_appointment_id": str(a)}
    assert (attempt["booking_uid"], attempt["bodies_kept"]) == (booking["uid"], True)
    assert "content-type" in attempt["response_headers"]


def test_composite_gets_one_booking_per_staff_required_phase(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    a = book(db, salon, service="perm")
    drain(db, sim)
    bookings = meta(sim, a)
    assert sorted(b["eventTypeId"] for b in bookings) == [8211, 8221, 8231, 8241], "child event types, staff 1"
    assert appointment(db, a)["calcom_sync_status"] == "synced"
    with db.connect() as conn:
        phases = conn.execute(
            "SELECT segment_key, staff_required, calcom_sync_status, calcom_booking_uid IS NOT NULL "
            "FROM appointment_phases WHERE appointment_id = %s ORDER BY sequence_order",
            [a],
        ).fetchall()
    assert [p for p in phases if p[1]] == [
        ("A", True, "synced", True),
        ("B", True, "synced", True),
        ("C", True, "synced", True),
        ("D", True, "synced", True),
    ]
    titles = {b["bookingFieldsResponses"]["title"] for b in bookings}
    assert "Dauerwelle - Wickeln" in titles


def test_reschedule_and_cancel(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    with db.connect() as conn:  # the cancel's request is read back from the archive below
        conn.execute("UPDATE calsync.settings SET value = 'true' WHERE key = 'archive_success_bodies'")
    a = book(db, salon)
    drain(db, sim)
    first_uid = appointment(db, a)["calcom_v2_booking_uid"]
    with db.connect() as conn:
        conn.execute(
            "UPDATE appointments SET starts_at = starts_at + interval '2 hours', "
            "ends_at = ends_at + interval '2 hours' WHERE id = %s",
            [a],
        )
        conn.commit()
    drain(db, sim)
    row = appointment(db, a)
    assert row["calcom_v2_booking_uid"] != first_uid, "a reschedule makes a new booking uid"
    live = active(meta(sim, a))
    assert [b["uid"] for b in live] == [row["calcom_v2_booking_uid"]]
    assert live[0]["rescheduledFromUid"] == first_uid
    with db.connect() as conn:
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [a])
        conn.commit()
    drain(db, sim)
    assert active(meta(sim, a)) == []
    cancel = [x for x in attempts(db, a) if x["action"] == "cancel"]
    assert cancel and cancel[0]["request_body"]["cancellationReason"].startswith("Cancelled in the salon system")


def test_create_then_cancel_before_sending_sends_nothing(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    a = book(db, salon)
    with db.connect() as conn:
        for hours in (1, 2, 3):
            conn.execute(
                "UPDATE appointments SET starts_at = starts_at + interval '1 hour', "
                "ends_at = ends_at + interval '1 hour' WHERE id = %s",
                [a],
            )
            conn.commit()
            del hours
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [a])
        conn.commit()
    drain(db, sim)
    assert booking_calls(sim) == 0
    assert outbox_left(db) == 0 and attempts(db, a) == []


def test_several_reschedules_collapse_to_the_last(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    a = book(db, salon)
    drain(db, sim)
    with db.connect() as conn:
        for _ in range(3):
            conn.execute(
                "UPDATE appointments SET starts_at = starts_at + interval '1 hour', "
                "ends_at = ends_at + interval '1 hour' WHERE id = %s",
                [a],
            )
            conn.commit()
    drain(db, sim)
    assert [x["action"] for x in attempts(db, a)] == ["create", "reschedule"]
    [live] = active(meta(sim, a))
    assert live["start"].startswith((FUTURE + dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))


def booking_calls(sim: SimulatorProcess) -> int:
    """Requests the simulator answered on its booking routes (not the start-up probe or event type reads)."""
    return sum(
        sum(by_status.values()) for route, by_status in sim.stats()["requests"].items() if "/v2/bookings" in route
    )


@pytest.mark.parametrize(
    ("setup", "category", "calls", "bookings"),
    [  # calls: exchanges archived for the appointment; bookings: of them, calls to /v2/bookings (an unknown event
        # type is found by the worker's read of it, before any booking call)
        ("past", "PAST_APPOINTMENT", 0, 0),
        ("no_event_type", "CONFIG_MISSING", 0, 0),
        ("broken_composite", "COMPOSITE_FAILURE", 0, 0),
        ("unknown_event_type", "EVENT_TYPE_NOT_FOUND", 1, 0),
        ("host_busy", "HOST_UNAVAILABLE", 2, 2),
    ],
)
def test_terminal_categories(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], setup: str, category: str, calls: int, bookings: int
) -> None:
    start = FUTURE
    with db.connect() as conn:
        if setup == "past":
            start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        elif setup == "no_contact":
            conn.execute("ALTER TABLE customers DISABLE TRIGGER customers_fill_placeholder_email")
            conn.execute(
                "UPDATE customers SET email = NULL, phone = 'anonymous_1763495863_2d3eaf7e' WHERE id = %s",
                [salon["customer"]],
            )
            conn.execute("ALTER TABLE customers ENABLE TRIGGER customers_fill_placeholder_email")
        elif setup == "no_event_type":
            conn.execute("UPDATE services SET calcom_event_type_id = NULL WHERE id = %s", [salon["cut"]])
        elif setup == "unknown_event_type":
            conn.execute("UPDATE services SET calcom_event_type_id = 999999 WHERE id = %s", [salon["cut"]])
        elif setup == "bad_email":
            conn.execute("UPDATE customers SET email = 'not-an-email' WHERE id = %s", [salon["customer"]])
        elif setup == "broken_composite":
            conn.execute('UPDATE services SET segments = \'[{"key": "A"}]\' WHERE id = %s', [salon["perm"]])
        conn.commit()
    if setup == "host_busy":  # someone booked the host at Cal.com directly
        walk_in(sim, FUTURE, 8001)
        before = booking_calls(sim)
    else:
        before = 0
    a = book(db, salon, service="perm" if setup == "broken_composite" else "cut", start=start)
    drain(db, sim)
    row = appointment(db, a)
    assert row["sync_error_code"] == category
    assert row["calcom_sync_status"] == "failed" and row["requires_manual_review"]
    assert row["sync_error_detail"]["category"] == category
    assert len(attempts(db, a)) == calls, "pre-flight guards make no API call"
    assert booking_calls(sim) - before == bookings
    with db.connect() as conn:
        dead = conn.execute("SELECT status, last_category FROM calsync.outbox_delivery").fetchall()
    assert dead == [("dead", category)]


@pytest.mark.parametrize("setup", ["no_contact", "bad_email"])
def test_a_contact_cal_com_would_refuse_is_replaced_and_the_booking_goes_out(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], setup: str
) -> None:
    """These used to end dead (MISSING_CONTACT, or Cal.com's {email}email_validation_error): the customer's placeholder
    e-mail goes in place of a missing or refused one (issue 10), and the stored value stays as it is."""
    with db.connect() as conn:
        if setup == "no_contact":
            conn.execute("ALTER TABLE customers DISABLE TRIGGER customers_fill_placeholder_email")
            conn.execute(
                "UPDATE customers SET email = NULL, phone = 'anonymous_1763495863_2d3eaf7e' WHERE id = %s",
                [salon["customer"]],
            )
            conn.execute("ALTER TABLE customers ENABLE TRIGGER customers_fill_placeholder_email")
        else:
            conn.execute("UPDATE customers SET email = 'not-an-email' WHERE id = %s", [salon["customer"]])
        conn.commit()
    a = book(db, salon)
    drain(db, sim)
    [booking] = active(meta(sim, a))
    assert booking["attendees"][0]["email"] == f"customer_{salon['customer']}@placeholder.invalid"
    if setup == "no_contact":
        assert "phoneNumber" not in booking["attendees"][0], "never the anonymous stand-in"
    else:
        assert booking["attendees"][0]["phoneNumber"] == "+4915112345678", "with the customer's real phone"
    assert appointment(db, a)["calcom_sync_status"] == "synced"
    with db.connect() as conn:
        stored = conn.execute("SELECT email FROM customers WHERE id = %s", [salon["customer"]]).fetchone()
    assert stored == ((None,) if setup == "no_contact" else ("not-an-email",))


@pytest.mark.parametrize(
    ("fault", "category"),
    [
        ("fail_5xx_rate", "SERVER_ERROR"),
        ("conflict_rate", "CONFLICT"),
        ("timeout_rate", "NETWORK"),
        ("malformed_rate", "MALFORMED_RESPONSE"),  # a 2xx without a usable booking (issue 11); was NETWORK
    ],
)
def test_retryable_categories_then_success(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], fault: str, category: str
) -> None:
    sim.set_config(**{fault: 1.0}, timeout_hang_s=1.5)
    a = book(db, salon)
    drain(db, sim, request_timeout_s=0.5)
    tries = attempts(db, a)
    assert tries[0]["category"] == category and tries[0]["retryable"] is True
    assert tries[0]["bodies_kept"] is True, "a failure is archived in full"
    assert tries[0]["request_method"] == "GET" or tries[0]["request_body"] is not None, "with what was sent"
    if tries[0]["response_status"] is not None:
        assert tries[0]["response_body"] and tries[0]["response_headers"], "with what Cal.com said"
    row = appointment(db, a)
    if row["calcom_sync_status"] != "synced":  # a timeout/malformed create stored the booking: it was adopted
        assert row["sync_error_code"] == category and not row["requires_manual_review"]
        sim.set_config(**{fault: 0.0})
        with db.connect() as conn:  # the retry is due later; make it due now
            conn.execute("UPDATE calsync.outbox_delivery SET next_attempt_at = now()")
            conn.commit()
        drain(db, sim)
    assert appointment(db, a)["calcom_sync_status"] == "synced"
    assert len(active(meta(sim, a))) == 1, "exactly one booking"


def test_a_refused_key_or_base_url_refuses_to_start(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    """One cheap authenticated call at start: a wrong key or a base URL that is not Cal.com's API stops the worker
    with one line, before any appointment is touched (it used to go dead appointment by appointment)."""
    a = book(db, salon)
    for over, said in (
        ({"api_key": "cal_live_wrong"}, "Cal.com refuses the API key"),
        ({"base_url": sim.base_url + "/v2/v2"}, "the base URL is not Cal.com's API"),
    ):
        with pytest.raises(CliError, match=f"refusing to start: {said}") as refused:
            drain(db, sim, **over)
        assert refused.value.exit_code == Exit.USAGE
    assert appointment(db, a)["calcom_sync_status"] == "pending" and attempts(db, a) == []
    assert booking_calls(sim) == 0


def test_a_key_revoked_while_running_pauses_its_syncs_until_it_works(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    """A 401 met while running is a problem of the key, not of the appointments: no attempt is counted, every event
    stays due, remediation.sync_health names the problem, and once the key works again they drain by themselves."""
    ids = [book(db, salon, start=FUTURE + dt.timedelta(hours=h)) for h in range(3)]

    async def run() -> None:
        worker = Worker(settings(db, sim, once=False, key_probe_s=0.3))
        task = asyncio.create_task(worker.run())
        try:
            # the start-up probe passed with the good key once the first three are synced (however long start-up
            # takes on a loaded machine: revoked before, the three would meet the refusal instead)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(  # noqa: ASYNC110 - polling the database
                appointment(db, i)["calcom_sync_status"] != "synced" for i in ids
            ):
                await asyncio.sleep(0.1)
            sim.set_config(api_keys=["cal_test_someone_else"])  # the key is revoked at Cal.com
            booked = book(db, salon, start=FUTURE + dt.timedelta(hours=9))
            ids.append(booked)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not paused(db):  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.1)
            assert paused(db), "the refusal is reported"
            deadline = time.monotonic() + 10  # its result is recorded (in batches every 20 ms; slower under load)
            while True:
                with db.connect() as conn:
                    state = conn.execute(
                        "SELECT d.status, d.attempts FROM calsync.outbox_delivery d JOIN calsync.outbox o "
                        "ON o.id = d.outbox_id WHERE o.aggregateid = %s",
                        [str(booked)],
                    ).fetchall()
                    health = conn.execute("SELECT health, alerts FROM remediation.sync_health").fetchone()
                if state or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert state == [("retry", 0)], "due again, and not counted as an attempt"
            assert health is not None and health[0] == "CRITICAL"
            assert any(x["alert"] == "key_refused" and "AUTH" in x["message"] for x in health[1])
            sim.set_config(api_keys=[API_KEY])  # fixed
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and appointment(db, booked)["calcom_sync_status"] != "synced":  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        finally:
            sim.set_config(api_keys=[API_KEY])
            worker.stop()
            await task

    asyncio.run(run())
    assert [appointment(db, i)["calcom_sync_status"] for i in ids] == ["synced"] * 4
    assert not paused(db), "the problem is resolved"
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM calsync.key_problems WHERE resolved_at IS NOT NULL").fetchone() == (
            1,
        )
    assert outbox_left(db) == 0


def paused(db: Db) -> bool:
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM calsync.key_problems WHERE resolved_at IS NULL").fetchone()
    return bool(row and row[0])


def test_rate_limit_is_retryable(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    a = book(db, salon)
    drain(db, sim)
    sim.set_config(rate_limit=1, rate_limit_window_s=60, rate_limit_block_s=60)
    b = book(db, salon, start=FUTURE + dt.timedelta(hours=5))
    c = book(db, salon, start=FUTURE + dt.timedelta(hours=6))
    drain(db, sim)  # the start-up probe takes the window's one request: b and c meet the 429
    with db.connect() as conn:
        limited = conn.execute(
            "SELECT aggregateid::bigint, attempts, next_attempt_at > now() + interval '30 seconds' "
            "FROM calsync.outbox_delivery WHERE last_category = 'RATE_LIMITED' ORDER BY 1"
        ).fetchall()
    # a 429 (or a request held back by the limiter) is not an attempt, and the event waits the block out
    assert limited == [(b, 0, True), (c, 0, True)]
    assert appointment(db, a)["calcom_sync_status"] == "synced"


def test_exactly_once_after_reset_and_false_negative(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    sim.set_config(reset_after_store_rate=1.0)
    a = book(db, salon)
    drain(db, sim)
    sim.set_config(reset_after_store_rate=0.0, false_negative_rate=1.0)
    b = book(db, salon, start=FUTURE + dt.timedelta(hours=4))
    drain(db, sim)
    for appt, first in ((a, "NETWORK"), (b, "VALIDATION")):
        assert [x["action"] for x in attempts(db, appt)] == ["create", "lookup"]
        assert attempts(db, appt)[0]["category"] == first
        assert len(active(meta(sim, appt))) == 1, "the stored booking is adopted, not booked again"
        assert appointment(db, appt)["calcom_sync_status"] == "synced"


def test_the_api_key_is_never_stored(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    book(db, salon)
    drain(db, sim)
    with db.connect() as conn:
        dump = conn.execute("SELECT string_agg(t::text, '') FROM calsync.sync_attempts t").fetchone()
    assert dump is not None and API_KEY not in str(dump[0]) and "Bearer" not in str(dump[0])


def test_refuses_a_database_not_at_head(fresh_db: Db, sim: SimulatorProcess) -> None:
    from worker.ops import migrate

    migrate.upgrade(fresh_db.url, "0003")
    with pytest.raises(migrate.NotAtHead, match="calsync migrate"):
        drain(fresh_db, sim)


def test_worker_writes_do_not_enqueue(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    book(db, salon, service="perm")
    drain(db, sim)
    assert outbox_left(db) == 0, "the worker's writes of booking ids and statuses enqueued nothing"
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM calsync.outbox_delivery").fetchone() == (0,)
        conn.execute("SET calsync.writer = ''")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO calsync.outbox_listeners (worker_id) VALUES ('x'), ('x')")


def test_a_claim_whose_reply_was_lost_is_given_back_at_once(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim commits, then the connection dies before the rows arrive: the worker holds leases it does not
    know of (300 s of them). Before it claims again it gives those back, so the appointment is synced in this
    same run instead of after the lease runs out."""
    ids = [book(db, salon, start=FUTURE + dt.timedelta(hours=h)) for h in range(3)]
    real_fetch = Worker._fetch
    lost = []

    async def fetch(self: Worker, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows = await real_fetch(self, name, params)
        if name == "claim" and not lost:
            lost.extend(rows)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return rows

    monkeypatch.setattr(Worker, "_fetch", fetch)
    drain(db, sim, lease_s=300)
    assert len(lost) == 3, "the first claim took all three and its reply was lost"
    assert [appointment(db, i)["calcom_sync_status"] for i in ids] == ["synced"] * 3
    assert outbox_left(db) == 0
    assert all(len(active(meta(sim, i))) == 1 for i in ids)


def test_a_result_the_database_refuses_does_not_hold_up_the_others(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One result the database can't take (here an attempt number that is not a number) once made the whole batch
    fail and be put back for ever: no outcome was recorded again and every lease ran out, round after round.
    Now the others are recorded, the refused one becomes a retry whose error says why, and the retry adopts the
    booking its first attempt made."""
    ids = [book(db, salon, start=FUTURE + dt.timedelta(hours=h)) for h in range(3)]
    real_encode = recording_module.encode_results
    spoiled: list[int] = []
    first_attempt: list[str] = []  # the exchange of the first attempt, spoiled whenever it is offered

    def encode(results: list[SyncResult]) -> str:
        # the typed contract can't build such a result: spoil its JSON on the way to the database instead
        documents = json.loads(real_encode(results))
        for r in documents:
            if r["appointment_id"] == ids[1] and r["exchanges"]:
                if not first_attempt:
                    spoiled.append(r["appointment_id"])
                    first_attempt.append(r["exchanges"][0]["at"])
                if r["exchanges"][0]["at"] == first_attempt[0]:
                    r["exchanges"][0]["response_status"] = "first"  # invalid input syntax for type bigint
        return json.dumps(documents)

    monkeypatch.setattr(recording_module, "encode_results", encode)
    drain(db, sim)
    assert spoiled == [ids[1]], "the spoiled result was offered to the database"
    assert [appointment(db, i)["calcom_sync_status"] for i in ids] == ["synced", "pending", "synced"]
    refused = appointment(db, ids[1])
    assert refused["sync_error_message"].startswith("the worker could not record this attempt (invalid input syntax")
    assert refused["sync_error_code"] == "NETWORK", "a success that could not be recorded retries as NETWORK"
    assert outbox_left(db) == 1, "the refused one is a retry, the others are delivered"
    with db.connect() as conn:
        conn.execute("UPDATE calsync.outbox_delivery SET next_attempt_at = now()")  # don't wait for the backoff
    drain(db, sim)
    assert [appointment(db, i)["calcom_sync_status"] for i in ids] == ["synced"] * 3
    assert outbox_left(db) == 0
    assert all(len(active(meta(sim, i))) == 1 for i in ids), "the retry adopted the first booking, no second one"


def test_a_booking_committed_while_the_worker_turns_idle_is_not_left_to_the_poll(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker finds nothing, and a booking commits before its idle flag does: the booking's trigger sees a
    busy worker and sends no NOTIFY. bench/worker_idle.py saw such bookings wait for the 5 s poll. The worker
    looks once more after setting the flag, so the booking goes out at once, not after the (here 30 s) poll."""
    real_set_idle = Worker.set_idle
    booked: list[int] = []

    async def set_idle(self: Worker, idle: bool) -> None:
        if idle and not self.idle and not booked:
            booked.append(book(db, salon))  # committed just before the flag: nobody is notified
        await real_set_idle(self, idle)

    monkeypatch.setattr(Worker, "set_idle", set_idle)

    async def run() -> float:
        worker = Worker(settings(db, sim, poll_interval_s=30, once=False))
        task = asyncio.create_task(worker.run())
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 10:
                if booked and appointment(db, booked[0])["calcom_sync_status"] == "synced":
                    break
                await asyncio.sleep(0.05)
            return time.monotonic() - t0
        finally:
            worker.stop()
            await task

    took = asyncio.run(run())
    assert booked, "the worker turned idle"
    assert appointment(db, booked[0])["calcom_sync_status"] == "synced", "synced without waiting for the poll"
    assert took < 5, f"took {took:.1f} s"
