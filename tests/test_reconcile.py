"""What the worker decides to send, from an appointment's state (pure functions, no I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from worker.sync.categories import Category, classify
from worker.sync.contract import SyncState
from worker.sync.planning import attendee, plan

NOW = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def _typed(cls: type[msgspec.Struct], values: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields a test leaves out with None, [] or False (as the database would send them)."""
    out = dict(values)
    for f in msgspec.structs.fields(cls):
        if f.name not in out:
            kind = str(f.type)
            out[f.name] = [] if kind.startswith("list") else False if kind == "<class 'bool'>" else None
    return out


def state(**over: Any) -> SyncState:
    s: dict[str, Any] = {
        "id": 7,
        "status": "confirmed",
        "starts_at": "2031-02-01T09:00:00+00:00",
        "ends_at": "2031-02-01T09:30:00+00:00",
        "is_composite": False,
        "booking_timezone": "Europe/Berlin",
        "customer": {
            "id": 3,
            "name": "Hans Schuster",
            "email": "hans@mail.example",
            "phone": "+4915112345678",
            "email_is_placeholder": False,
            "usable_email": True,
            "usable_phone": True,
        },
        "service": {"id": 2, "name": "Herrenhaarschnitt", "event_type_id": 501},
        "phases": [],
        "event_map": None,
        "synced": [],
        "superseded": [],
    }
    s.update(over)
    from worker.sync import contract

    s["event_map"] = [{"segment_key": k, "event_type_id": v} for k, v in (s.get("event_map") or {}).items()]
    s["phases"] = [_typed(contract.Phase, p) for p in s["phases"]]
    if s.get("customer"):  # the e-mail rule as the database applies it (usable_email and email_accepted agree)
        customer = {"id": 1, "email_accepted": s["customer"].get("usable_email", False), **s["customer"]}
        s["customer"] = _typed(contract.Customer, customer)
    s["synced"] = [_typed(contract.KnownBooking, b) for b in s["synced"]]
    return msgspec.convert(_typed(SyncState, s), SyncState, strict=False)


def kinds(s: SyncState, now: dt.datetime = NOW) -> list[str]:
    return [a.kind for a in plan(s, now).actions]


def test_new_booking_is_created() -> None:
    assert kinds(state()) == ["create"]


def test_synced_booking_at_the_same_time_needs_nothing() -> None:
    synced = [{"slot": 0, "uid": "u1", "start_at": "2031-02-01T09:00:00+00:00", "event_type_id": 501}]
    assert kinds(state(synced=synced)) == []


def test_moved_booking_is_rescheduled_and_cancelled_one_is_cancelled() -> None:
    synced = [{"slot": 0, "uid": "u1", "start_at": "2031-02-01T08:00:00+00:00", "event_type_id": 501}]
    assert kinds(state(synced=synced)) == ["reschedule"]
    assert kinds(state(synced=synced, status="cancelled")) == ["cancel"]


def test_create_then_cancel_before_sending_sends_nothing() -> None:
    assert kinds(state(status="cancelled")) == []


def test_composite_gets_one_booking_per_staff_required_phase() -> None:
    phases = [
        {
            "id": 11,
            "segment_key": "A",
            "segment_name": "Wickeln",
            "staff_required": True,
            "start_time": "2031-02-01T09:00:00+00:00",
            "end_time": "2031-02-01T09:50:00+00:00",
        },
        {
            "id": 12,
            "segment_key": "A_gap",
            "staff_required": False,
            "start_time": "2031-02-01T09:50:00+00:00",
            "end_time": "2031-02-01T10:05:00+00:00",
        },
        {
            "id": 13,
            "segment_key": "B",
            "segment_name": "Fixieren",
            "staff_required": True,
            "start_time": "2031-02-01T10:05:00+00:00",
            "end_time": "2031-02-01T10:10:00+00:00",
        },
    ]
    p = plan(state(is_composite=True, phases=phases, event_map={"A": 9001, "B": 9002}), NOW)
    assert [(a.kind, a.target.phase_id, a.target.event_type_id) for a in p.actions if a.target] == [
        ("create", 11, 9001),
        ("create", 13, 9002),
    ]
    assert p.actions[0].target is not None and p.actions[0].target.title == "Herrenhaarschnitt - Wickeln"
    missing = plan(state(is_composite=True, phases=phases, event_map={"A": 9001}), NOW)
    assert missing.guard is not None and missing.guard.category == Category.CONFIG_MISSING


def test_guards_make_no_call() -> None:
    past = plan(state(starts_at="2030-01-01T09:00:00+00:00", ends_at="2030-01-01T09:30:00+00:00"), NOW)
    assert past.guard is not None and past.guard.category == Category.PAST_APPOINTMENT and not past.actions
    nobody = {
        "id": 3,
        "name": "Anon",
        "email": None,
        "phone": "anonymous_1763495863_2d3eaf7e",
        "usable_email": False,
        "usable_phone": False,
    }
    g = plan(state(customer=nobody), NOW).guard
    assert g is not None and g.category == Category.MISSING_CONTACT
    g = plan(state(is_composite=True, phases=[]), NOW).guard
    assert g is not None and g.category == Category.COMPOSITE_FAILURE
    g = plan(state(service={"id": 2, "name": "x", "event_type_id": None}), NOW).guard
    assert g is not None and g.category == Category.CONFIG_MISSING


def test_attendee_never_sends_anonymous_phone_and_the_placeholder_in_place_of_a_missing_email() -> None:
    anon = {
        "name": "A",
        "email": "customer_5@placeholder.invalid",
        "email_is_placeholder": True,
        "placeholder_email": "customer_5@placeholder.invalid",
        "phone": "anonymous_1_abcdef12",
        "usable_email": True,
        "usable_phone": False,
    }
    assert attendee(state(customer=anon, booking_timezone="Europe/Berlin")) == {
        "name": "A",
        "timeZone": "Europe/Berlin",
        "language": "de",
        "email": "customer_5@placeholder.invalid",
    }
    # a phone-only customer: the real phone, and the placeholder for an event type whose e-mail is required
    with_phone = {**anon, "phone": "+4915112345678", "usable_phone": True}
    assert attendee(state(customer=with_phone, booking_timezone=None)) == {
        "name": "A",
        "timeZone": "UTC",
        "language": "de",
        "phoneNumber": "+4915112345678",
        "email": "customer_5@placeholder.invalid",
    }


def test_attendee_contacts_as_cal_com_accepts_them() -> None:
    """National phones in E.164 by the salon's country; a phone that is not valid never sent; an e-mail Cal.com's
    rule refuses replaced by the placeholder (the stored value is kept); the company's language."""
    refused = {
        "name": "Frau Klein",
        "email": "frau.klein@web",
        "email_is_placeholder": False,
        "email_accepted": False,
        "placeholder_email": "customer_9@placeholder.invalid",
        "phone": "030 1234567",
        "usable_phone": True,
    }
    sent = attendee(state(customer=refused))
    assert sent is not None and sent["email"] == "customer_9@placeholder.invalid"
    assert sent["phoneNumber"] == "+49301234567" and sent["language"] == "de"
    vienna = attendee(state(customer={**refused, "phone": "01 5881234"}, phone_region="AT", language="en"))
    assert vienna is not None and vienna["phoneNumber"] == "+4315881234" and vienna["language"] == "en"
    garbage = attendee(state(customer={**refused, "phone": "12"}))
    assert garbage is not None and "phoneNumber" not in garbage, "never a phone Cal.com would refuse"


def test_classification_of_cal_com_answers() -> None:
    wrapped = {
        "status": "error",
        "error": {"code": "BadRequestException", "message": "Attempting to book a meeting in the past."},
    }
    assert classify(400, wrapped, "").category == Category.PAST_APPOINTMENT
    raw = {"statusCode": 400, "message": "User either already has booking at this time or is not available"}
    assert classify(400, raw, "").category == Category.HOST_UNAVAILABLE
    v = classify(400, {"statusCode": 400, "message": "responses - {email}email_validation_error"}, "")
    assert (v.category, v.field, v.retryable) == (Category.VALIDATION, "email", False)
    assert classify(404, {"error": {"message": "Event type with id 5 not found."}}, "").category == (
        Category.EVENT_TYPE_NOT_FOUND
    )
    assert classify(429, {}, "").category == Category.RATE_LIMITED
    assert classify(503, {}, "").retryable
    assert classify(None, None, "", "ReadTimeout").category == Category.NETWORK
    assert classify(201, None, "<html>").category == Category.MALFORMED_RESPONSE
    assert classify(401, {}, "").category == Category.AUTH
