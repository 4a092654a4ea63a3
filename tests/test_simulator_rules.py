"""The Cal.com rules a real deployment meets (calcom-api.md §8), each over real HTTP against the simulator process.

Sources are in /work/notes/simulator.md. One simulator serves the module; the `api` fixture resets it (event types
and users too) and registers EVENT_TYPES before each test.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.devtools.simulator.rules import EMAIL_CASES, calcom_accepts_email

KEY = "cal_test_calsync"  # the configured key: the built-in account user, who hosts everything
V = {"cal-api-version": "2024-08-13"}
HOST = {**V, "Authorization": f"Bearer {KEY}"}
ET_V = {"cal-api-version": "2024-06-14", "Authorization": f"Bearer {KEY}"}
EVENT_TYPES: list[dict[str, Any]] = [
    {"id": 1, "lengthInMinutes": 30, "hostUserId": 100, "hostEmail": "lena@salon.example", "slug": "cut"},
    {"id": 2, "lengthInMinutes": 50, "hostUserId": 100, "slug": "perm-wrap"},
    {"id": 3, "lengthInMinutes": 30, "hostUserId": 200, "lengthInMinutesOptions": [15, 30, 60]},
    {"id": 4, "lengthInMinutes": 30, "hostUserId": 300, "phoneField": "hidden"},
    {"id": 5, "lengthInMinutes": 30, "hostUserId": 400, "emailRequired": False, "phoneField": "required"},
    {"id": 6, "lengthInMinutes": 45, "hostUserId": 800, "teamId": 7, "hostName": "Mia"},
    {
        "id": 7,
        "lengthInMinutes": 60,
        "hostUserId": 900,
        "recurrence": {"frequency": "weekly", "interval": 1, "occurrences": 4},
    },
]
DEFAULTS: dict[str, Any] = {
    "rate_limit": 100_000,
    "latency_ms": [0, 0],
    "fail_5xx_rate": 0.0,
    "timeout_rate": 0.0,
    "timeout_hang_s": 30.0,
    "reset_after_store_rate": 0.0,
    "false_negative_rate": 0.0,
    "malformed_rate": 0.0,
    "conflict_rate": 0.0,
    "clock_offset_s": 0.0,
}
TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(SimulatorConfig(rate_limit=100_000, seed=5)) as s:
        yield s


@pytest.fixture
def api(sim: SimulatorProcess) -> Iterator[httpx.Client]:
    sim.reset(event_types=True)
    sim.set_config(**DEFAULTS)
    sim.register_event_types(EVENT_TYPES)
    with httpx.Client(base_url=sim.v2_url, trust_env=False, timeout=10.0) as client:
        yield client


def at(days: int = 2, hour: int = 9, minute: int = 0) -> str:
    return (TODAY + dt.timedelta(days=days, hours=hour, minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(iso: str) -> str:
    return iso.replace("Z", ".000Z")


def booking(start: str | None = None, et: int = 1, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": start or at(),
        "eventTypeId": et,
        "attendee": {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Berlin"},
        "metadata": {"calsync_appointment_id": "1"},
    }
    body.update(over)
    return body


def attendee(**fields: str) -> dict[str, Any]:
    return {"name": "Ada Lovelace", "timeZone": "Europe/Berlin", **fields}


def create(api: httpx.Client, body: dict[str, Any], headers: dict[str, str] = V) -> httpx.Response:
    return api.post("/bookings", json=body, headers=headers)


def created(api: httpx.Client, body: dict[str, Any], headers: dict[str, str] = V) -> dict[str, Any]:
    r = create(api, body, headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def bad(r: httpx.Response, text: str, status: int = 400) -> None:
    """A wrapped HttpException with exactly this message."""
    assert r.status_code == status, r.text
    assert r.json()["status"] == "error" and r.json()["error"]["message"] == text, r.text


def zod(r: httpx.Response, text: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"code": "BAD_REQUEST", "message": text}


def raw(r: httpx.Response, text: str, status: int = 400) -> None:
    """A core HttpError in Nest's bare shape."""
    assert r.status_code == status, r.text
    assert r.json() == {"statusCode": status, "message": text}


# -- 1. lengths ------------------------------------------------------------------------------------------------
def test_a_booking_ends_at_start_plus_the_event_types_length(api: httpx.Client) -> None:
    data = created(api, booking(at(hour=9), et=2))  # no lengthInMinutes: the event type's 50 minutes
    assert (data["start"], data["end"], data["duration"]) == (ms(at(hour=9)), ms(at(hour=9, minute=50)), 50)
    assert created(api, booking(at(hour=12), et=3))["duration"] == 30  # the default of a several-lengths type


def test_length_in_minutes_on_a_single_length_event_type_is_refused(api: httpx.Client) -> None:
    bad(
        create(api, booking(et=1, lengthInMinutes=30)),
        "Can't specify 'lengthInMinutes' because event type does not have multiple possible lengths. Please, remove "
        "the 'lengthInMinutes' field from the request.",
    )


def test_length_in_minutes_must_be_one_of_the_event_types_lengths(api: httpx.Client) -> None:
    bad(
        create(api, booking(et=3, lengthInMinutes=50)),
        "Provided 'lengthInMinutes' is not one of the possible lengths for the event type. The possible lengths "
        "are: 15, 30, 60",
    )
    data = created(api, booking(at(hour=10), et=3, lengthInMinutes=60))
    assert (data["end"], data["duration"]) == (ms(at(hour=11)), 60)


def test_an_api_reschedule_books_the_event_types_length_not_the_old_one(api: httpx.Client) -> None:
    """input.service.ts transformInputRescheduleBooking: end = start + eventType.length."""
    uid = created(api, booking(at(hour=10), et=3, lengthInMinutes=60))["uid"]
    moved = api.post(f"/bookings/{uid}/reschedule", json={"start": at(hour=14)}, headers=V)
    assert moved.status_code == 201, moved.text
    assert moved.json()["data"]["duration"] == 30


def test_length_options_must_include_the_length(sim: SimulatorProcess) -> None:
    with pytest.raises(httpx.HTTPStatusError) as e:
        sim.register_event_types([{"id": 9, "lengthInMinutes": 20, "hostUserId": 1, "lengthInMinutesOptions": [30]}])
    assert "must include lengthInMinutes" in e.value.response.text


# -- 2. event type and profile reads ---------------------------------------------------------------------------
def test_get_event_type_2024_06_14_shape(api: httpx.Client) -> None:
    r = api.get("/event-types/3", headers=ET_V)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert r.json()["status"] == "success"
    assert (data["id"], data["lengthInMinutes"], data["lengthInMinutesOptions"]) == (3, 30, [15, 30, 60])
    assert data["metadata"] == {"multipleDuration": [15, 30, 60]}
    assert data["ownerId"] == 200 and data["users"][0]["id"] == 200
    fields = {f["slug"]: f for f in data["bookingFields"]}
    assert fields["email"]["required"] is True and fields["attendeePhoneNumber"]["hidden"] is False
    single = api.get("/event-types/1", headers=ET_V).json()["data"]
    assert single["lengthInMinutes"] == 30 and "lengthInMinutesOptions" not in single and single["metadata"] == {}
    hidden = api.get("/event-types/4", headers=ET_V).json()["data"]["bookingFields"]
    assert [f["hidden"] for f in hidden if f["slug"] == "attendeePhoneNumber"] == [True]


def test_get_event_type_versions(api: httpx.Client) -> None:
    """Without 2024-06-14 the older controller answers (no lengthInMinutes); the bookings version has no route."""
    legacy = api.get("/event-types/2", headers={"Authorization": f"Bearer {KEY}"})
    assert legacy.status_code == 200
    assert legacy.json()["data"]["eventType"]["length"] == 50 and "lengthInMinutes" not in legacy.json()["data"]
    bad(api.get("/event-types/2", headers=HOST), "Cannot GET /v2/event-types/2", 404)


def test_get_event_type_not_found_and_auth(api: httpx.Client, sim: SimulatorProcess) -> None:
    bad(api.get("/event-types/999", headers=ET_V), "Event type with id 999 not found", 404)
    sim.register_users([{"id": 100, "apiKeys": ["cal_test_lena"]}])
    lena = {"cal-api-version": "2024-06-14", "Authorization": "Bearer cal_test_lena"}
    assert api.get("/event-types/1", headers=lena).status_code == 200  # her own
    bad(api.get("/event-types/3", headers=lena), "Event type with id 3 not found", 404)  # someone else's
    assert api.get("/event-types/1", headers={"cal-api-version": "2024-06-14"}).status_code == 403
    wrong = {"cal-api-version": "2024-06-14", "Authorization": "Bearer cal_live_nope"}
    bad(api.get("/event-types/1", headers=wrong), "ApiAuthStrategy - api key - Your api key is not valid", 401)


def test_get_team_event_type(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.register_users(
        [
            {"id": 500, "apiKeys": ["cal_test_member"], "teams": {"7": "MEMBER"}},
            {"id": 600, "apiKeys": ["cal_test_admin"], "teams": {"7": "ADMIN"}},
        ]
    )
    admin = {"Authorization": "Bearer cal_test_admin"}  # any version, none too
    r = api.get("/teams/7/event-types/6", headers=admin)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["teamId"], data["lengthInMinutes"], data["hosts"][0]["userId"]) == (7, 45, 800)
    assert data["schedulingType"] == "collective" and data["ownerId"] is None
    assert api.get("/event-types/6", headers={**admin, "cal-api-version": "2024-06-14"}).json()["data"]["teamId"] == 7
    bad(api.get("/teams/7/event-types/1", headers=admin), "Event type with id 1 not found", 404)
    bad(
        api.get("/teams/7/event-types/6", headers={"Authorization": "Bearer cal_test_member"}),
        "RolesGuard - user with id=500 does not have the minimum required role=TEAM_ADMIN within team with id=7.",
        403,
    )
    bad(
        api.get("/teams/8/event-types/6", headers=admin),
        "RolesGuard - User is not a member of the team with id=8.",
        403,
    )
    bad(
        api.get("/teams/7/event-types/6"),
        "ApiAuthStrategy - No authentication method provided. Either pass an API key as 'Bearer' header or OAuth "
        "client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers",
        401,
    )


def test_me_checks_url_and_key(api: httpx.Client, sim: SimulatorProcess) -> None:
    for headers in ({"Authorization": f"Bearer {KEY}"}, HOST):  # any version
        r = api.get("/me", headers=headers)
        assert r.status_code == 200 and r.json()["data"]["id"] == 1, r.text
    sim.register_users([{"id": 42, "username": "lena", "email": "lena@salon.example", "apiKeys": ["cal_test_l"]}])
    me = api.get("/me", headers={"Authorization": "Bearer cal_test_l"}).json()["data"]
    assert {k: me[k] for k in ("id", "username", "email", "timeZone")} == {
        "id": 42,
        "username": "lena",
        "email": "lena@salon.example",
        "timeZone": "UTC",
    }
    assert api.get("/me").status_code == 401
    bad(
        api.get("/me", headers={"Authorization": "Bearer cal_live_x"}),
        "ApiAuthStrategy - api key - Your api key is not valid",
        401,
    )
    with httpx.Client(base_url=sim.base_url + "/v2/v2", trust_env=False) as doubled:  # a base URL ending in /v2
        bad(doubled.get("/me", headers=HOST), "Cannot GET /v2/v2/me", 404)


# -- 3. phones -------------------------------------------------------------------------------------------------
def test_a_national_phone_is_invalid_when_the_event_type_shows_the_phone_field(api: httpx.Client) -> None:
    body = booking(attendee=attendee(email="ada@example.com", phoneNumber="030 1234567"))
    zod(create(api, body), "responses - {attendeePhoneNumber}invalid_number, ")
    body["attendee"]["phoneNumber"] = "+49 30 1234567"
    assert created(api, body)["attendees"][0]["phoneNumber"] == "+49 30 1234567"


def test_a_hidden_phone_field_checks_no_phone(api: httpx.Client) -> None:
    data = created(api, booking(et=4, attendee=attendee(email="ada@example.com", phoneNumber="0171 1234567")))
    assert data["attendees"][0]["phoneNumber"] == "0171 1234567"


def test_a_required_phone_field_needs_a_phone(api: httpx.Client) -> None:
    zod(create(api, booking(et=5)), "responses - {attendeePhoneNumber}error_required_field, ")


def test_both_errors_come_last_field_first(api: httpx.Client) -> None:
    zod(
        create(api, booking(attendee=attendee(email="ada@", phoneNumber="030 1234567"))),
        "responses - {attendeePhoneNumber}invalid_number, responses - {email}email_validation_error, ",
    )


# -- 4. e-mails ------------------------------------------------------------------------------------------------
def test_a_phone_only_attendee_needs_an_event_type_with_an_optional_email(api: httpx.Client) -> None:
    phone_only = attendee(phoneNumber="+4915112345678")
    zod(create(api, booking(et=1, attendee=phone_only)), "responses - {email}error_required_field, ")
    data = created(api, booking(et=5, attendee=phone_only))
    assert data["attendees"][0]["email"] == "4915112345678@sms.cal.com"


@pytest.mark.parametrize(("email", "ok"), [c for c in EMAIL_CASES if c[0]], ids=repr)
def test_email_rule(api: httpx.Client, email: str, ok: bool) -> None:
    assert calcom_accepts_email(email) is ok
    r = create(api, booking(attendee=attendee(email=email)))
    if ok:
        assert r.status_code == 201, r.text
        assert r.json()["data"]["attendees"][0]["email"] == email
    else:
        zod(r, "responses - {email}email_validation_error, ")


def test_an_optional_email_field_is_not_checked(api: httpx.Client) -> None:
    """getBookingResponsesSchema checks the e-mail only when the field is required."""
    data = created(api, booking(et=5, attendee=attendee(email="not-an-email", phoneNumber="+4915112345678")))
    assert data["attendees"][0]["email"] == "not-an-email"


# -- 5. cancelling the past ------------------------------------------------------------------------------------
def test_a_booking_that_has_ended_cannot_be_cancelled(api: httpx.Client, sim: SimulatorProcess) -> None:
    uid = created(api, booking(at(days=1, hour=9)))["uid"]
    other = created(api, booking(at(days=1, hour=12)))["uid"]
    sim.set_config(clock_offset_s=(TODAY + dt.timedelta(days=1, hours=10) - dt.datetime.now(dt.UTC)).total_seconds())
    raw(
        api.post(f"/bookings/{uid}/cancel", json={"cancellationReason": "late"}, headers=HOST),
        "Cannot cancel a booking that has already ended",
    )
    assert api.get(f"/bookings/{uid}", headers=V).json()["data"]["status"] == "accepted"
    with pytest.raises(httpx.HTTPStatusError) as e:
        sim.cancel_as(uid, by="attendee")
    assert e.value.response.json()["message"] == "Cannot cancel a booking that has already ended"
    assert api.post(f"/bookings/{other}/cancel", json={"cancellationReason": "x"}, headers=HOST).status_code == 200
    bad(create(api, booking(at(days=1, hour=9, minute=30))), "Attempting to book a meeting in the past.")


# -- 6. recurring event types ----------------------------------------------------------------------------------
def test_a_recurring_event_type_answers_with_one_booking_per_occurrence(api: httpx.Client) -> None:
    r = create(api, booking("2030-03-25T08:00:00Z", et=7))  # 09:00 in Berlin, across the DST change of 31 March
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert isinstance(data, list) and len(data) == 4
    assert [b["start"] for b in data] == [
        "2030-03-25T08:00:00.000Z",
        "2030-04-01T07:00:00.000Z",  # still 09:00 in Berlin
        "2030-04-08T07:00:00.000Z",
        "2030-04-15T07:00:00.000Z",
    ]
    assert len({b["uid"] for b in data}) == 4 and len({b["recurringBookingUid"] for b in data}) == 1
    series = api.get(f"/bookings/{data[0]['recurringBookingUid']}", headers=V).json()["data"]
    assert [b["uid"] for b in series] == [b["uid"] for b in data]
    two = created(api, booking("2031-01-06T08:00:00Z", et=7, recurrenceCount=2))
    assert isinstance(two, list) and len(two) == 2
    bad(
        create(api, booking("2032-01-05T08:00:00Z", et=7, recurrenceCount=5)),
        "Provided recurrence count is higher than the event type's recurring event count.",
    )
    assert isinstance(created(api, booking(et=1, recurrenceCount=3)), dict)  # ignored on a plain event type
    done = api.post(
        f"/bookings/{data[2]['uid']}/cancel",
        json={"cancellationReason": "x", "cancelSubsequentBookings": True},
        headers=HOST,
    )
    assert [b["status"] for b in done.json()["data"]] == ["cancelled", "cancelled"]
    assert [b["status"] for b in api.get(f"/bookings/{data[0]['recurringBookingUid']}", headers=V).json()["data"]] == [
        "accepted",
        "accepted",
        "cancelled",
        "cancelled",
    ]


# -- 7. outside changes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("by", "email"), [("attendee", "ada@example.com"), ("host", "lena@salon.example")])
def test_an_outside_reschedule_makes_a_successor(api: httpx.Client, sim: SimulatorProcess, by: str, email: str) -> None:
    old = created(api, booking(at(hour=9)))
    moved = sim.reschedule_as(old["uid"], at(hour=15), by=by, reason="train late")
    new, previous = moved["booking"], moved["previous"]
    assert new["uid"] != old["uid"] and new["rescheduledFromUid"] == old["uid"]
    assert (new["start"], new["duration"], new["status"]) == (ms(at(hour=15)), 30, "accepted")
    assert new["rescheduledByEmail"] == email and new["reschedulingReason"] == "train late"
    assert new["metadata"] == {"calsync_appointment_id": "1"} and new["attendees"] == old["attendees"]
    assert new["icsUid"] == old["icsUid"] and new["bookingFieldsResponses"] == old["bookingFieldsResponses"]
    assert previous["status"] == "cancelled" and previous["rescheduledToUid"] == new["uid"]
    assert api.get(f"/bookings/{old['uid']}", headers=V).json()["data"]["rescheduledToUid"] == new["uid"]
    bad(
        api.post(f"/bookings/{old['uid']}/reschedule", json={"start": at(hour=17)}, headers=V),
        f"Can't reschedule booking with uid={old['uid']} because it has been cancelled and rescheduled already to "
        f"booking with uid={new['uid']}. You probably want to reschedule {new['uid']} instead by passing it within "
        "the request URL.",
    )
    listed = api.get("/bookings", params={"attendeeEmail": "ada@example.com", "status": "upcoming"}, headers=HOST)
    assert [b["uid"] for b in listed.json()["data"]] == [new["uid"]]


def test_an_outside_cancel(api: httpx.Client, sim: SimulatorProcess) -> None:
    first = created(api, booking(at(hour=9)))["uid"]
    cancelled = sim.cancel_as(first, by="attendee")["booking"]
    assert cancelled["status"] == "cancelled" and cancelled["cancelledByEmail"] == "ada@example.com"
    second = created(api, booking(at(hour=11)))["uid"]
    with pytest.raises(httpx.HTTPStatusError) as e:
        sim.cancel_as(second, by="host")  # Cal.com makes the host give a reason
    assert e.value.response.json() == {
        "statusCode": 400,
        "message": "Cancellation reason is required when you are the host",
    }
    by_host = sim.cancel_as(second, by="host", reason="stylist ill")["booking"]
    assert by_host["cancelledByEmail"] == "lena@salon.example" and by_host["cancellationReason"] == "stylist ill"
    bad(
        api.post(f"/bookings/{second}/cancel", json={"cancellationReason": "x"}, headers=HOST),
        f"Can't cancel booking with uid={second} because it has been cancelled already. Please provide uid of a "
        "booking that is not cancelled.",
    )


# -- 8. list scope ---------------------------------------------------------------------------------------------
def test_a_key_lists_only_the_bookings_its_user_may_see(api: httpx.Client, sim: SimulatorProcess) -> None:
    mine = created(api, booking(at(hour=9), et=1))["uid"]  # host 100
    team = created(api, booking(at(hour=9), et=6, attendee=attendee(email="bob@example.com")))["uid"]  # team 7
    attended = created(api, booking(at(hour=9), et=3, attendee=attendee(email="Carol@Example.com")))["uid"]
    sim.register_users(
        [
            {"id": 100, "apiKeys": ["cal_test_host"]},
            {"id": 500, "apiKeys": ["cal_test_member"], "teams": {"7": "MEMBER"}},
            {"id": 600, "apiKeys": ["cal_test_admin"], "teams": {"7": "OWNER"}},
            {"id": 700, "email": "carol@example.com", "apiKeys": ["cal_test_carol"]},
            {"id": 710, "apiKeys": ["cal_test_org"], "orgAdmin": True},
        ]
    )

    def seen(key: str) -> set[str]:
        r = api.get("/bookings", headers={**V, "Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return {b["uid"] for b in r.json()["data"]}

    assert seen("cal_test_host") == {mine}
    assert seen("cal_test_member") == set()  # a plain member sees no other hosts' bookings
    assert seen("cal_test_admin") == {team}
    assert seen("cal_test_carol") == {attended}
    assert seen("cal_test_org") == seen(KEY) == {mine, team, attended}
    member = {**V, "Authorization": "Bearer cal_test_member"}
    assert api.get("/bookings", params={"bookingUid": team}, headers=member).json()["pagination"]["totalItems"] == 0


# -- 9. reset generations --------------------------------------------------------------------------------------
def test_a_request_that_straddles_a_reset_is_not_counted(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(timeout_rate=1.0, timeout_hang_s=0.8)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/bookings", json=booking(), headers=V, timeout=0.2)
    sim.reset()
    time.sleep(1.0)  # the hanging request answers now, after the reset
    stats = sim.stats()
    assert stats["requests"] == {} and stats["requestsTotal"] == 0 and stats["faults"]["timeout"] == 0


def test_a_request_delayed_across_a_reset_stores_nothing(api: httpx.Client, sim: SimulatorProcess) -> None:
    sim.set_config(latency_ms=[600, 600])
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(create(api, booking()).status_code))
    thread.start()
    time.sleep(0.2)
    sim.reset()
    thread.join()
    assert answers == [503] and sim.bookings() == [] and sim.stats()["requestsTotal"] == 0


# -- 10. the throttler -----------------------------------------------------------------------------------------
def test_the_simulators_throttler_is_not_called_rate_limiter() -> None:
    from worker.devtools.simulator import throttler

    assert hasattr(throttler, "Throttler") and not hasattr(throttler, "RateLimiter")
