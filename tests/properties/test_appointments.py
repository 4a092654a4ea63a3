"""Appointments: bookings and moves at odd times (Europe/Berlin's spring gap and autumn overlap, year 1 and
9999, the ends of timestamptz's range, ±infinity), ends before or at the start, no service, every status,
composite and simple services (a fuzzed one too), staff shared by one Cal.com user. Each write and its
commit either leaves every rule holding, with the row as written except what the database documents it
does (is_composite from the service, phases derived at commit, version + 1, the flag of a composite
whose segments are unusable), or is refused by a named rule the new state really breaks (bookings.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.properties.bookings import KEEP, SERVICES, STAFF, Insert, Run, Update
from tests.properties.conftest import Base
from tests.properties.harness import STATS, Conn, example, fuzz_settings, value
from tests.properties.strategies import SQL_NULL, lengths, shifts, small_segments, statuses, times, weighted

PROP = "appointments"

_service = st.sampled_from(SERVICES)
_staff = st.sampled_from(STAFF)
inserts = st.builds(
    Insert,
    customer=st.integers(0, 3),
    service=_service,
    staff=_staff,
    start=times,
    length=lengths,
    status=statuses,
    is_composite=st.none() | st.booleans(),
    calcom_booking_id=st.none() | st.sampled_from([13060966, 13068988]),
    calcom_uid=st.none() | st.sampled_from(["uid-1", "uid-2"]),
    sync_origin=st.sampled_from([None, None, "calcom", "retell"]),
)
updates = st.builds(
    Update,
    target=st.integers(0, 5),
    start=st.none() | times | shifts,
    length=weighted((2, st.just(KEEP)), (1, lengths)),
    service=st.just(KEEP) | _service,
    staff=st.just(KEEP) | _staff,
    status=st.just(KEEP) | statuses,
    is_composite=st.just(KEEP) | st.booleans(),
    version=st.sampled_from([KEEP, KEEP, KEEP, "current", "stale"]),
)
ops = st.lists(inserts | updates, min_size=1, max_size=7)


@fuzz_settings(PROP)
@given(fuzzed=small_segments, fuzzed_composite=st.booleans(), steps=ops)
def test_bookings_and_moves_keep_every_rule(
    fx: Conn, base: Base, fuzzed: Any, fuzzed_composite: bool, steps: list[Insert | Update]
) -> None:
    STATS.cases[PROP] += 1
    with example(fx):
        service = value(
            fx,
            "INSERT INTO services (company_id, name, duration_minutes, composite, segments) "
            "VALUES (%s, 'Fuzz', 60, %s, %s::jsonb) RETURNING id",
            [base.company, fuzzed_composite, None if fuzzed is SQL_NULL else json.dumps(fuzzed)],
        )
        run = Run(fx, base, service, PROP)
        for step in steps:
            if isinstance(step, Insert):
                run.insert(step)
            else:
                run.update(step)
