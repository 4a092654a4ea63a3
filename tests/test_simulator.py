"""The Cal.com API simulator, driven over real HTTP in a separate process (worker.devtools.simulator.SimulatorProcess).

Expected texts come from /work/shared/calcom-api.md. One simulator process serves the module; the `api` fixture
resets its bookings, counters, rate limits and fault settings before each test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.devtools.simulator.config import API_KEYS_ENV, add_arguments, config_from_args, config_to_args

KEY = "cal_test_calsync"
V = {"cal-api-version": "2024-08-13"}
HOST = {**V, "Authorization": f"Bearer {KEY}"}
EVENT_TYPES = [
    {"id": 1, "lengthInMinutes": 30, "hostUserId": 100, "slug": "consult", "hostUsername": "dr-who"},
    {"id": 2, "lengthInMinutes": 60, "hostUserId": 100, "slug": "long"},
    {"id": 3, "lengthInMinutes": 30, "hostUserId": 200},
    {"id": 4, "lengthInMinutes": 30, "hostUserId": 300, "lengthInMinutesOptions": [15, 30, 60]},
    {"id": 5, "lengthInMinutes": 30, "hostUserId": 400, "emailRequired": False, "phoneField": "required"},
]
DEFAULTS: dict[str, Any] = {
    "rate_limit": 100_000,
    "rate_limit_window_s": 60.0,
    "rate_limit_block_s": 60.0,
    "latency_ms": [0, 0],
    "fail_5xx_rate": 0.0,
    "timeout_rate": 0.0,
    "timeout_hang_s": 30.0,
    "reset_after_store_rate": 0.0,
    "false_negative_rate": 0.0,
    "malformed_rate": 0.0,
}
META_MSG = "Metadata must have at most 50 keys, each key up to 40 characters, and string values up to 500 characters."
CONTACT = (
    "attendee property is wrong, attendee email or phone property is wrong,Attendee must have at least one contact "
    "method (email or phone number) "
)
BUSY = "User either already has booking at this time or is not available"
PAST = "Attempting to book a meeting in the past."


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(SimulatorConfig(rate_limit=100_000, seed=7)) as s:
        yield s


@pytest.fixture
def api(sim: SimulatorProcess) -> Iterator[httpx.Client]:
    sim.reset(event_types=True)
    sim.set_config(**DEFAULTS)
    sim.register_event_types(EVENT_TYPES)
    with httpx.Client(base_url=sim.v2_url, trust_env=False, timeout=10.0) as client:
        yield client


TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # fixed: no midnight drift


def at(days: int = 2, hour: int = 9, minute: int = 0) -> str:
    """A start time `days` after today (UTC) at hour:minute, as the worker sends it."""
    return (TODAY + dt.timedelta(days=days, hours=hour, minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def booking(start: str | None = None, et: int = 1, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": start or at(),
        "eventTypeId": et,
        "attendee": {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Berlin"},
        "metadata": {"appointment_id": "1"},
    }
    body.update(over)
    return body


def create(api: httpx.Client, body: dict[str, Any], headers: dict[str, str] = V) -> httpx.Response:
    return api.post("/bookings", json=body, headers=headers)


def message(r: httpx.Response) -> str:
    return str(r.json()["error"]["message"])


def assert_wrapped(r: httpx.Response, status: int, code: str, text: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert body["error"]["message"] == text
    assert body["path"].startswith("/v2/")
    assert body["timestamp"].endswith("Z")


def bad(r: httpx.Response, text: str) -> None:
    assert_wrapped(r, 400, "BadRequestException", text)
    assert r.json()["error"]["details"] == {"message": text, "error": "Bad Request", "statusCode": 400}


# -- happy paths -----------------------------------------------------------------------------------------------
def test_create_get_list_reschedule_cancel(api: httpx.Client, sim: SimulatorProcess) -> None:
    body = booking(at(hour=10), bookingFieldsResponses={"title": "Check-up", "notes": "bring x-rays"})
    r = create(api, body)
    assert r.status_code == 201, r.text
    assert r.headers["X-Request-Id"]
    assert r.headers["X-RateLimit-Limit-Default"] == "100000"
    data = r.json()["data"]
    assert r.json()["status"] == "success"
    assert isinstance(data["id"], int) and len(data["uid"]) == 22
    assert data["status"] == "accepted"
    assert data["start"] == at(hour=10).replace("Z", ".000Z")
    assert data["end"] == at(hour=10, minute=30).replace("Z", ".000Z")
    assert data["duration"] == 30 and data["eventTypeId"] == 1
    assert data["eventType"] == {"id": 1, "slug": "consult"}
    assert data["hosts"][0]["id"] == 100 and data["hosts"][0]["username"] == "dr-who"
    attendee = data["attendees"][0]
    assert attendee["email"] == "ada@example.com" and attendee["timeZone"] == "Europe/Berlin"
    assert attendee["language"] == "en" and attendee["absent"] is False
    assert data["metadata"] == {"appointment_id": "1"}
    assert data["bookingFieldsResponses"]["title"] == "Check-up"
    assert data["description"] == "bring x-rays"
    assert "cancellationReason" not in data and "rescheduledToUid" not in data

    got = api.get(f"/bookings/{data['uid']}", headers=V)
    assert got.status_code == 200 and got.json()["data"] == data

    listed = api.get("/bookings", params={"attendeeEmail": "ada@example.com"}, headers=HOST)
    assert listed.status_code == 200
    assert [b["uid"] for b in listed.json()["data"]] == [data["uid"]]

    moved = api.post(f"/bookings/{data['uid']}/reschedule", json={"start": at(hour=11)}, headers=V)
    assert moved.status_code == 201, moved.text
    new = moved.json()["data"]
    assert new["uid"] != data["uid"] and new["rescheduledFromUid"] == data["uid"]
    assert new["start"].startswith(at(hour=11)[:-1]) and new["metadata"] == {"appointment_id": "1"}
    old = api.get(f"/bookings/{data['uid']}", headers=V).json()["data"]
    assert old["status"] == "cancelled" and old["rescheduledToUid"] == new["uid"]

    cancelled = api.post(f"/bookings/{new['uid']}/cancel", json={"cancellationReason": "patient ill"}, headers=HOST)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    assert cancelled.json()["data"]["cancellationReason"] == "patient ill"
    listed = api.get("/bookings", params={"status": "cancelled"}, headers=HOST).json()
    assert {b["uid"] for b in listed["data"]} == {data["uid"], new["uid"]}
    assert [b["status"] for b in sim.bookings("appointment_id", "1")] == ["cancelled", "cancelled"]


def test_list_filters_sorting_and_pagination(api: httpx.Client) -> None:
    uids = []
    for i in range(5):
        body = booking(at(hour=8 + i), et=1 if i < 3 else 3)
        body["attendee"]["email"] = f"p{i % 2}@example.com"
        r = create(api, body)
        assert r.status_code == 201, r.text
        uids.append(r.json()["data"]["uid"])

    page = api.get("/bookings", params={"take": "2", "skip": "2"}, headers=HOST).json()
    assert [b["uid"] for b in page["data"]] == uids[2:4]
    assert page["pagination"] == {
        "itemsReturned": 2,
        "totalItems": 5,
        "itemsPerPage": 2,
        "remainingItems": 1,
        "currentPage": 2,
        "totalPages": 3,
        "hasNextPage": True,
        "hasPreviousPage": True,
    }
    desc = api.get("/bookings", params={"sortStart": "desc"}, headers=HOST).json()["data"]
    assert [b["uid"] for b in desc] == uids[::-1]
    by_type = api.get("/bookings", params={"eventTypeIds": "3"}, headers=HOST).json()["data"]
    assert [b["uid"] for b in by_type] == uids[3:]
    window = {"afterStart": at(hour=9), "beforeEnd": at(hour=11), "attendeeEmail": "p1@example.com"}
    assert [b["uid"] for b in api.get("/bookings", params=window, headers=HOST).json()["data"]] == [uids[1]]
    assert (
        api.get("/bookings", params={"status": "upcoming,past"}, headers=HOST).json()["pagination"]["totalItems"] == 5
    )
    assert api.get("/bookings", params={"bookingUid": uids[0]}, headers=HOST).json()["data"][0]["uid"] == uids[0]

    too_many = api.get("/bookings", params={"take": "251"}, headers=HOST)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["details"]["errors"][0]["constraints"] == {
        "max": "take must not be greater than 250"
    }
    bad_date = api.get("/bookings", params={"afterStart": "yesterday"}, headers=HOST)
    assert bad_date.status_code == 400
    assert bad_date.json()["error"]["details"]["errors"][0]["property"] == "afterStart"
    assert api.get("/bookings", params={"status": "soon"}, headers=HOST).status_code == 400


# -- validation texts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"foo": 1}, "foo property is wrong,property foo should not exist "),
        ({"start": None}, "start property is wrong,start must be a valid ISO 8601 date string "),
        ({"start": "next tuesday"}, "start property is wrong,start must be a valid ISO 8601 date string "),
        ({"eventTypeId": "one"}, "eventTypeId property is wrong,eventTypeId must be an integer number "),
        (
            {"attendee": {"email": "a@example.com", "timeZone": "UTC"}},
            "attendee property is wrong, name property is wrong,name must be a string ",
        ),
        (
            {"attendee": {"name": "A", "email": "a@example.com", "timeZone": "Mars/Olympus"}},
            "attendee property is wrong, timeZone property is wrong,timeZone must be a valid IANA time-zone ",
        ),
        (
            {"attendee": {"name": "A", "email": "a@example.com", "timeZone": "UTC", "age": 3}},
            "attendee property is wrong, age property is wrong,property age should not exist ",
        ),
        ({"attendee": {"name": "A", "timeZone": "UTC"}}, CONTACT),
        (
            {"eventTypeId": None},
            "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be provided",
        ),
        (
            {"lengthInMinutes": 60},
            "Can't specify 'lengthInMinutes' because event type does not have multiple possible lengths. Please, "
            "remove the 'lengthInMinutes' field from the request.",
        ),
    ],
)
def test_create_validation_texts(api: httpx.Client, change: dict[str, Any], expected: str) -> None:
    body = booking()
    body.update(change)
    if body["eventTypeId"] is None:
        del body["eventTypeId"]
    bad(create(api, body), expected)
    assert api.get("/bookings", headers=HOST).json()["data"] == []


def test_contact_method_is_checked_before_the_event_type(api: httpx.Client) -> None:
    body = booking(et=999)
    body["attendee"] = {"name": "A", "timeZone": "UTC", "email": "  "}
    bad(create(api, body), CONTACT)


@pytest.mark.parametrize(
    ("attendee", "expected"),
    [
        ({"email": "not-an-email"}, "responses - {email}email_validation_error, "),
        (
            {"email": "a@example.com", "phoneNumber": "anonymous_1763495863_2d3eaf7e"},
            "responses - {attendeePhoneNumber}invalid_number, ",
        ),
        ({"phoneNumber": "+4915112345678"}, "responses - {email}error_required_field, "),  # e-mail required
    ],
)
def test_email_and_phone_errors_come_in_the_zod_shape(
    api: httpx.Client, attendee: dict[str, str], expected: str
) -> None:
    body = booking()
    body["attendee"] = {"name": "A", "timeZone": "UTC", **attendee}
    r = create(api, body)
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "BAD_REQUEST", "message": expected}


def test_phone_only_attendee_gets_a_placeholder_email(api: httpx.Client) -> None:
    body = booking(et=5)  # e-mail optional, phone required
    body["attendee"] = {"name": "A", "timeZone": "UTC", "phoneNumber": "+4915112345678"}
    r = create(api, body)
    assert r.status_code == 201, r.text
    attendee = r.json()["data"]["attendees"][0]
    assert attendee["email"] == "4915112345678@sms.cal.com" and attendee["phoneNumber"] == "+4915112345678"


def test_length_in_minutes_rules(api: httpx.Client) -> None:
    bad(
        create(api, booking(et=4, lengthInMinutes=45)),
        "Provided 'lengthInMinutes' is not one of the possible lengths for the event type. The possible lengths "
        "are: 15, 30, 60",
    )
    bad(
        create(api, booking(et=4, lengthInMinutes=0)),
        "lengthInMinutes property is wrong,lengthInMinutes must not be less than 1 ",
    )
    r = create(api, booking(et=4, lengthInMinutes=60))
    assert r.status_code == 201 and r.json()["data"]["duration"] == 60


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        ({f"k{i}": "v" for i in range(51)}, False),
        ({"k" * 41: "v"}, False),
        ({"k": "v" * 501}, False),
        ({"k": {"nested": "no"}}, False),
        ({"k": None}, False),
        ({"k": ["a"]}, False),
        ("a string", False),
        ({f"k{i}": "v" for i in range(50)}, True),
        ({"k" * 40: "v" * 500, "n": 3, "f": 1.5, "b": True}, True),
    ],
)
def test_metadata_limits(api: httpx.Client, metadata: Any, ok: bool) -> None:
    r = create(api, booking(metadata=metadata))
    if ok:
        assert r.status_code == 201, r.text
        assert r.json()["data"]["metadata"] == metadata
    else:
        assert r.status_code == 400
        assert message(r).startswith(f"metadata property is wrong,{META_MSG}")


# -- version routing and auth ----------------------------------------------------------------------------------
def test_version_routing(api: httpx.Client) -> None:
    for headers in ({}, {"cal-api-version": "2099-01-01"}):
        r = create(api, booking(), headers)
        assert r.status_code == 400
        assert r.json()["error"]["message"] == "Bad Request Exception"
        props = {e["property"] for e in r.json()["error"]["details"]["errors"]}
        assert {"timeZone", "language"} <= props
    wrong = create(api, booking(), {"cal-api-version": "2024-09-04"})
    assert_wrapped(wrong, 404, "NotFoundException", "Cannot POST /v2/bookings")
    assert wrong.headers["X-RateLimit-Limit-Default"] == "100000"  # every /v2 answer carries the headers
    assert create(api, booking(at(hour=7)), {"cal-api-version": "2026-02-25"}).status_code == 201
    assert api.post("/bookings/x/reschedule", json={"start": at()}).status_code == 404
    legacy = {
        "start": at(hour=12),
        "eventTypeId": 1,
        "timeZone": "UTC",
        "language": "en",
        "metadata": {"appointment_id": "9"},
        "responses": {"name": "Old Client", "email": "old@example.com"},
    }
    r = create(api, legacy, {})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["status"] == "ACCEPTED" and r.json()["data"]["startTime"].startswith(at(hour=12)[:-1])


def test_auth(api: httpx.Client) -> None:
    assert_wrapped(
        api.get("/bookings", headers=V),
        403,
        "ForbiddenException",
        "PermissionsGuard - no authentication provided. Provide either authorization bearer token containing "
        "managed user access token or oAuth client id in 'x-cal-client-id' header.",
    )
    wrong_key = {**V, "Authorization": "Bearer cal_live_wrong"}
    msg = "ApiAuthStrategy - api key - Your api key is not valid"
    assert_wrapped(api.get("/bookings", headers=wrong_key), 401, "UnauthorizedException", msg)
    assert_wrapped(create(api, booking(), wrong_key), 401, "UnauthorizedException", msg)
    assert_wrapped(
        api.get("/bookings", headers={**V, "Authorization": "Bearer eyJhbGciOi"}),
        401,
        "UnauthorizedException",
        "ApiAuthStrategy - access token - Invalid Access Token.",
    )
    assert create(api, booking(), V).status_code == 201  # public booking without credentials
    assert api.get("/bookings", headers=HOST).status_code == 200


# -- business rules --------------------------------------------------------------------------------------------
def test_unknown_event_type_and_past(api: httpx.Client) -> None:
    assert_wrapped(create(api, booking(et=999)), 404, "NotFoundException", "Event type with id 999 not found.")
    bad(create(api, booking(at(days=-1))), PAST)


def test_host_overlap_across_event_types(api: httpx.Client) -> None:
    assert create(api, booking(at(hour=9), et=1)).status_code == 201  # host 100, 09:00-09:30
    bad(create(api, booking(at(hour=8, minute=45), et=2)), BUSY)  # host 100, 08:45-09:45
    bad(create(api, booking(at(hour=9, minute=15), et=1)), BUSY)
    assert create(api, booking(at(hour=9), et=3)).status_code == 201  # another host
    assert create(api, booking(at(hour=9, minute=30), et=1)).status_code == 201  # touching is fine
    assert create(api, booking(at(hour=8), et=2)).status_code == 201  # 08:00-09:00


def test_host_overrides_and_slug_lookup(api: httpx.Client) -> None:
    assert create(api, booking(at(hour=9))).status_code == 201
    overlapping = booking(at(hour=9, minute=15), allowConflicts=True)
    bad(create(api, overlapping, V), BUSY)  # silently ignored unless the caller is the host
    assert create(api, overlapping, HOST).status_code == 201
    same_slot = create(api, booking(at(hour=9), allowConflicts=True), HOST)
    assert same_slot.status_code == 409
    assert same_slot.json() == {"statusCode": 409, "message": "booking_conflict_error"}  # idempotency key
    by_slug = booking(at(hour=14), eventTypeSlug="consult", username="dr-who")
    del by_slug["eventTypeId"]
    assert create(api, by_slug).json()["data"]["eventTypeId"] == 1
    by_slug["username"] = "nobody"
    assert_wrapped(
        create(api, by_slug),
        404,
        "NotFoundException",
        "Event type with slug consult belonging to user nobody not found.",
    )
    newest = booking(at(hour=16), allowBookingOutOfBounds=True)
    bad(
        create(api, newest),
        "allowBookingOutOfBounds property is wrong,property allowBookingOutOfBounds should not exist ",
    )
    assert create(api, newest, {"cal-api-version": "2026-02-25"}).status_code == 201


def test_retry_is_refused_until_the_first_booking_is_cancelled(api: httpx.Client, sim: SimulatorProcess) -> None:
    first = create(api, booking())
    assert first.status_code == 201
    bad(create(api, booking()), BUSY)
    uid = first.json()["data"]["uid"]
    assert api.post(f"/bookings/{uid}/cancel", json={"cancellationReason": "moved"}, headers=HOST).status_code == 200
    again = create(api, booking())
    assert again.status_code == 201 and again.json()["data"]["uid"] != uid
    assert len(sim.bookings("appointment_id", "1")) == 2


def test_cancel_and_reschedule_errors(api: httpx.Client) -> None:
    assert_wrapped(
        api.post("/bookings/nope/cancel", json={"cancellationReason": "x"}, headers=V),
        404,
        "NotFoundException",
        "Booking with uid=nope not found",
    )
    assert_wrapped(
        api.get("/bookings/nope", headers=V),
        404,
        "NotFoundException",
        "Booking with uid=nope was not found in the database",
    )
    uid = create(api, booking()).json()["data"]["uid"]
    raw = api.post(f"/bookings/{uid}/cancel", json={}, headers=HOST)
    assert raw.status_code == 400
    assert raw.json() == {"statusCode": 400, "message": "Cancellation reason is required when you are the host"}
    bad(
        api.post(f"/bookings/{uid}/cancel", json={"reason": "x"}, headers=V),
        "reason property is wrong,property reason should not exist ",
    )
    assert api.post(f"/bookings/{uid}/cancel", json={}, headers=V).status_code == 200  # attendee: no reason needed
    bad(
        api.post(f"/bookings/{uid}/cancel", json={"cancellationReason": "x"}, headers=HOST),
        f"Can't cancel booking with uid={uid} because it has been cancelled already. Please provide uid of a booking "
        "that is not cancelled.",
    )
    bad(
        api.post(f"/bookings/{uid}/reschedule", json={"start": at(hour=15)}, headers=V),
        f"Can't reschedule booking with uid={uid} because it has been cancelled. Please provide uid of a booking that "
        "is not cancelled.",
    )
    other = create(api, booking(at(hour=13))).json()["data"]["uid"]
    new = api.post(f"/bookings/{other}/reschedule", json={"start": at(hour=14)}, headers=V).json()["data"]["uid"]
    bad(
        api.post(f"/bookings/{other}/reschedule", json={"start": at(hour=16)}, headers=V),
        f"Can't reschedule booking with uid={other} because it has been cancelled and rescheduled already to booking "
        f"with uid={new}. You probably want to reschedule {new} instead by passing it within the request URL.",
    )
    bad(api.post(f"/bookings/{new}/reschedule", json={"start": at(days=-1)}, headers=V), PAST)
    assert api.post("/bookings/nope/reschedule", json={"start": at()}, headers=V).status_code == 404


# -- rate limiting ---------------------------------------------------------------------------------------------
def test_rate_limit_blocks_after_the_limit(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(rate_limit=5, rate_limit_window_s=60, rate_limit_block_s=60)
    remaining = []
    for _ in range(5):
        r = api.get("/bookings", headers=HOST)
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit-Default"] == "5"
        assert 0 < int(r.headers["X-RateLimit-Reset-Default"]) <= 60
        remaining.append(int(r.headers["X-RateLimit-Remaining-Default"]))
    assert remaining == [4, 3, 2, 1, 0]
    for _ in range(3):
        r = api.get("/bookings", headers=HOST)
        assert r.status_code == 429
        body = r.json()
        assert body["status"] == "error"
        assert body["error"]["code"] == "ThrottlerException"
        assert body["error"]["message"] == "Too many requests. Please try again later."
        assert "Retry-After" not in r.headers
        assert r.headers["X-RateLimit-Remaining-Default"] == "0"
        assert 55 <= int(r.headers["X-RateLimit-Reset-Default"]) <= 60
        assert r.headers["X-Request-Id"]
    assert create(api, booking(), HOST).status_code == 429  # every request of that key, create included
    assert create(api, booking(), V).status_code == 201  # unauthenticated: counted per IP
    assert sim.stats()["rateLimited"] == 4


def test_rate_limit_window_and_block_expire(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(rate_limit=2, rate_limit_window_s=1.0, rate_limit_block_s=1.5)
    assert [api.get("/bookings", headers=HOST).status_code for _ in range(3)] == [200, 200, 429]
    blocked_at = time.monotonic()  # the window started and the block began before this
    time.sleep(1.05)
    assert api.get("/bookings", headers=HOST).status_code == 429  # the window is over, the block is not
    time.sleep(max(0.0, blocked_at + 1.6 - time.monotonic()))
    assert api.get("/bookings", headers=HOST).status_code == 200


# -- faults ----------------------------------------------------------------------------------------------------
def test_fault_5xx_stores_nothing(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(fail_5xx_rate=1.0)
    r = create(api, booking())
    assert r.status_code == 500
    assert r.json()["error"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "message": "There was an error, please try again later.",
    }
    assert sim.bookings() == []
    assert sim.stats()["faults"]["fail_5xx"] == 1


def test_fault_reset_after_store(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(reset_after_store_rate=1.0)
    with pytest.raises(httpx.TransportError):
        create(api, booking(metadata={"appointment_id": "77"}))
    stored = sim.bookings("appointment_id", "77")
    assert [b["status"] for b in stored] == ["accepted"]
    assert api.get(f"/bookings/{stored[0]['uid']}", headers=V).status_code == 200  # only creates are reset
    bad(create(api, booking(metadata={"appointment_id": "77"})), BUSY)  # the blind retry
    assert sim.stats()["faults"]["reset_after_store"] == 1  # the retry's 400 is not reset: only stored creates are


def test_fault_false_negative(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(false_negative_rate=1.0)
    bad(create(api, booking()), "An unexpected error occurred while creating the booking")
    assert len(sim.bookings("appointment_id", "1")) == 1
    sim.set_config(false_negative_message="Something broke")
    bad(create(api, booking(at(hour=12))), "Something broke")
    assert sim.stats()["faults"]["false_negative"] == 2


def test_fault_malformed_body(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(malformed_rate=1.0)
    r = create(api, booking())
    assert r.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert len(sim.bookings()) == 1
    assert sim.stats()["faults"]["malformed"] == 1


def test_fault_timeout_after_store(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(timeout_rate=1.0, timeout_hang_s=2.0)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/bookings", json=booking(), headers=V, timeout=0.5)
    assert [b["status"] for b in sim.bookings("appointment_id", "1")] == ["accepted"]
    assert sim.stats()["faults"]["timeout"] == 1


def test_scripted_faults_hit_the_next_requests_of_their_operation(api: httpx.Client, sim: SimulatorProcess) -> None:
    """A scripted fault is the next request's of its operation only, once, in order ("none" lets one through);
    other operations and later requests are untouched, and an unknown operation or fault is a 400."""
    assert sim.script_fault("get", "none") == 1
    assert sim.script_fault("get", "fail_5xx") == 2
    assert create(api, booking()).status_code == 201, "a create is not a get"
    assert [api.get("/bookings/nope", headers=V).status_code for _ in range(3)] == [404, 500, 404]
    assert sim.stats()["faults"]["fail_5xx"] == 1
    for payload, said in (
        ({"op": "delete", "fault": "fail_5xx"}, "op must be one of create"),
        ({"op": "get", "fault": "explode"}, "fault must be none or one of"),
        ({"op": "get", "fault": "false_negative"}, "a fault of create only"),
    ):
        r = httpx.post(f"{sim.base_url}/_sim/faults", json=payload)
        assert r.status_code == 400 and said in r.text, r.text
    sim.script_fault("create", "fail_5xx")
    sim.reset()
    assert create(api, booking()).status_code == 201, "a reset forgets what was scripted"


def test_latency_and_seeded_faults(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(latency_ms=[150, 150])
    t0 = time.perf_counter()
    assert api.get("/bookings/nope", headers=V).status_code == 404
    assert time.perf_counter() - t0 >= 0.15
    sim.set_config(latency_ms=[0, 0], seed=3, fail_5xx_rate=0.5)
    first = [api.get("/bookings/nope", headers=V).status_code for _ in range(30)]
    sim.set_config(seed=3)
    second = [api.get("/bookings/nope", headers=V).status_code for _ in range(30)]
    assert first == second and {404, 500} == set(first)
    assert sim.stats()["faults"]["fail_5xx"] == first.count(500) * 2


def test_faults_from_command_line_flags() -> None:
    config = SimulatorConfig(fail_5xx_rate=1.0, seed=1, api_keys=("cal_test_other",))
    with (
        SimulatorProcess(config, event_types=EVENT_TYPES[:1]) as other,
        httpx.Client(base_url=other.v2_url, trust_env=False) as c,
    ):
        assert other.stats()["eventTypes"] == 1
        r = c.get("/bookings", headers={**V, "Authorization": "Bearer cal_test_other"})
        assert r.status_code == 500
        assert c.get("/bookings", headers=HOST).status_code == 401  # only the configured key is valid
        assert other.stats()["faults"]["fail_5xx"] == 1


# -- admin -----------------------------------------------------------------------------------------------------
def test_admin_endpoints(api: httpx.Client, sim: SimulatorProcess) -> None:
    assert create(api, booking(metadata={"appointment_id": 123})).status_code == 201
    assert create(api, booking(at(hour=12), metadata={"appointment_id": "124"})).status_code == 201
    assert [b["metadata"]["appointment_id"] for b in sim.bookings("appointment_id", "123")] == [123]
    assert len(sim.bookings()) == 2
    stats = sim.stats()
    assert stats["requests"]["POST /v2/bookings"] == {"201": 2}
    assert stats["bookingsStored"] == 2 and stats["eventTypes"] == len(EVENT_TYPES)

    unknown = api.get("/nothing-here", headers=V)
    assert_wrapped(unknown, 404, "NotFoundException", "Cannot GET /v2/nothing-here")
    assert unknown.headers["X-Request-Id"]

    shown = sim.admin("GET", "/_sim/config")
    assert shown["api_key_count"] == 1 and KEY not in json.dumps(shown)
    with pytest.raises(httpx.HTTPStatusError):
        sim.set_config(port=1)
    with pytest.raises(httpx.HTTPStatusError):
        sim.set_config(fail_5xx_rate=0.7, timeout_rate=0.7)
    with pytest.raises(httpx.HTTPStatusError):
        sim.register_event_types([{"id": 9}])

    sim.register_event_types([{"id": 1, "lengthInMinutes": 45, "hostUserId": 100}])  # replaces id 1
    r = create(api, booking(at(hour=15)))
    assert r.json()["data"]["duration"] == 45

    sim.reset()
    assert sim.bookings() == [] and sim.stats()["requestsTotal"] == 0
    assert create(api, booking()).status_code == 201  # event types kept
    sim.reset(event_types=True)
    assert create(api, booking()).status_code == 404


def test_config_command_line_roundtrip(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--port", "0", "--latency-ms", "5:20", "--fail-5xx", "0.1", "--event-type", "7:45:70:intake", "--seed", "9"]
    )
    monkeypatch.setenv(API_KEYS_ENV, "cal_test_a, cal_test_b")
    config = config_from_args(args)
    assert config.latency_ms == (5.0, 20.0) and config.fail_5xx_rate == 0.1 and config.seed == 9
    assert config.api_keys == ("cal_test_a", "cal_test_b")
    assert config.event_types[0].slug == "intake" and config.event_types[0].length_in_minutes == 45
    assert "cal_test_a" not in repr(config) and "cal_test_a" not in " ".join(config_to_args(config))
    again = config_from_args(parser.parse_args(config_to_args(config)))
    assert again.fail_5xx_rate == 0.1 and again.latency_ms == (5.0, 20.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--fail-5xx", "1.5"])
    with pytest.raises(ValueError, match="add up"):
        SimulatorConfig(fail_5xx_rate=0.6, malformed_rate=0.6)
