"""Services with any segments JSON (the live, legacy and range shapes of domain.md §2, missing keys, zero
and negative durations, strings for numbers, wrong types, nulls, thousands of entries), composite on or
off: a live composite booking gets exactly the phases the segments give at commit, or (segments unusable)
is flagged for manual review; later edits of the service are refused only while upcoming bookings
depend on what they would take away (services_keep_segments_while_booked)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from tests.properties import oracle, rules
from tests.properties.bookings import KEEP, Insert, Run
from tests.properties.conftest import Base
from tests.properties.harness import STATS, Conn, attempt, example, fuzz_settings, known_bug, segments_of, value
from tests.properties.strategies import SQL_NULL, Time, segments, small_segments, weighted

PROP = "segments"

_booking = st.builds(
    Insert,
    customer=st.integers(0, 3),
    service=st.just("fuzzed"),
    staff=st.sampled_from([None, "lena", "aushilfe"]),
    start=st.builds(Time, st.sampled_from(["ordinary", "ordinary", "past", "ts_max"]), st.just(0)),
    length=st.sampled_from([60, 135]),
    status=weighted((4, st.just("confirmed")), (1, st.sampled_from(["cancelled", "completed", "pending"]))),
    is_composite=st.none(),
    calcom_booking_id=st.none(),
    calcom_uid=st.none(),
    sync_origin=st.none(),
)
_change = st.tuples(small_segments | st.just(KEEP), st.booleans() | st.just(KEEP))


def _jsonb(segs: Any) -> str | None:
    return None if segs is SQL_NULL else json.dumps(segs)


@fuzz_settings(PROP)
@given(
    segs=segments,
    composite=st.booleans(),
    bookings=st.lists(_booking, min_size=1, max_size=2),
    change=st.none() | _change,
    rebook=_booking,
)
def test_segments_give_phases_or_a_flag(
    fx: Conn, base: Base, segs: Any, composite: bool, bookings: list[Insert], change: Any, rebook: Insert
) -> None:
    STATS.cases[PROP] += 1
    with example(fx):
        service = value(
            fx,
            "INSERT INTO services (company_id, name, duration_minutes, composite, segments) "
            "VALUES (%s, 'Fuzz', 60, %s, %s::jsonb) RETURNING id",
            [base.company, composite, _jsonb(segs)],
        )
        run = Run(fx, base, service, PROP)
        for i, booking in enumerate(bookings):  # one minute apart: the same customer may book twice
            run.insert(booking if i == 0 else Insert(**{**booking.__dict__, "start": Time(booking.start.anchor, 1)}))
        if change is None:
            return
        new_segs, new_composite = change
        sets: dict[str, Any] = {}
        if new_segs != KEEP:
            sets["segments"] = _jsonb(new_segs)
        if new_composite != KEEP:
            sets["composite"] = new_composite
        if not sets:
            return
        after_segs = sets.get("segments", value(fx, "SELECT segments::text FROM services WHERE id = %s", [service]))
        after_composite = sets.get("composite", composite)
        bugs: dict[str, str] = {}
        problem = oracle.segments_problem(segments_of(fx, after_segs), bugs)
        upcoming = value(
            fx,
            "SELECT EXISTS (SELECT 1 FROM appointments WHERE service_id = %s "
            "AND status NOT IN ('cancelled', 'no_show') AND ends_at > now())",
            [service],
        )
        cols = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in sets)
        query = sql.SQL("UPDATE services SET {} WHERE id = %(id)s").format(cols)
        _, failure = attempt(fx, query, {**sets, "id": service})
        # what the rule guards while upcoming bookings use the service: a composite keeps composite and usable
        # segments; a simple one does not become composite (its bookings have no phases)
        guarded = (composite and (not after_composite or problem is not None)) or (not composite and after_composite)
        if failure is not None:
            if composite and after_composite and failure.sqlstate in bugs:
                known_bug(PROP, bugs[failure.sqlstate])
                return
            assert (failure.sqlstate, failure.constraint) == ("23514", "services_keep_segments_while_booked"), str(
                failure
            )
            assert guarded and upcoming, f"{failure} though nothing booked depends on it"
            STATS.record(PROP, f"service change refused: {failure.rule}")
            return
        assert not (composite and after_composite and bugs), f"expected known bug {bugs} did not happen"
        assert not (guarded and upcoming), "change accepted"
        STATS.record(PROP, "service changed")
        skip: tuple[str, ...] = ("is_composite follows the service",)  # the bookings of the past keep theirs
        stale = value(
            fx,
            "SELECT count(*) FROM appointments a JOIN services s ON s.id = a.service_id WHERE s.id = %s "
            "AND a.is_composite <> s.composite AND a.status NOT IN ('cancelled', 'no_show') AND a.ends_at > now()",
            [service],
        )
        assert not stale, f"{stale} upcoming appointments contradict their service"
        run.skip = skip
        broken = rules.broken_rules(fx, skip=skip)
        assert not broken, f"after the service change: {json.dumps(broken, default=str)}"
        run.insert(Insert(**{**rebook.__dict__, "start": Time(rebook.start.anchor, 60 * 24)}))
