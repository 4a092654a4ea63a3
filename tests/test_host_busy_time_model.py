"""calsync.host_busy_time always equals its definition, the view calsync.appointment_busy_intervals
(one row per interval; the table holds one row per appointment, its intervals as one multirange, keyed
by calsync.host_id), whatever sequence of bookings, moves, cancellations, staff/service changes and phase
edits happens (the triggers take fast paths for common writes; this checks they agree with the one
definition)."""

from __future__ import annotations

import datetime as dt

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Db

BASE = dt.datetime(2031, 3, 3, 8, 0, tzinfo=dt.UTC)

op = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 3), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("move"), st.integers(0, 30), st.integers(0, 40)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("restaff"), st.integers(0, 30), st.integers(0, 3)),
    st.tuples(st.just("reservice"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("drop_phase"), st.integers(0, 30)),
    st.tuples(st.just("delete"), st.integers(0, 30)),
    st.tuples(st.just("relink"), st.integers(0, 3)),
    st.tuples(st.just("shift_phase"), st.integers(0, 30), st.integers(-3, 3)),
    st.tuples(st.just("toggle_phase"), st.integers(0, 30)),
    st.tuples(st.just("rehome_phase"), st.integers(0, 30), st.integers(0, 30)),
    st.tuples(st.just("rewrite_phases"), st.integers(0, 30)),
)

MISMATCH = """
WITH defined AS (
    SELECT i.appointment_id, i.staff_id, calsync.host_id(s.calcom_user_id, s.id) AS host_id, range_agg(i.busy) AS busy
    FROM calsync.appointment_busy_intervals i JOIN staff s ON s.id = i.staff_id
    GROUP BY 1, 2, 3
)
(SELECT appointment_id, staff_id, host_id, busy FROM calsync.host_busy_time
 EXCEPT ALL SELECT appointment_id, staff_id, host_id, busy FROM defined)
UNION ALL
(SELECT appointment_id, staff_id, host_id, busy FROM defined
 EXCEPT ALL SELECT appointment_id, staff_id, host_id, busy FROM calsync.host_busy_time)
"""


def _apply(
    conn: psycopg.Connection[tuple[object, ...]], ids: dict[str, list[object]], step: tuple[object, ...]
) -> None:
    kind = step[0]
    appts = [r[0] for r in conn.execute("SELECT id FROM appointments ORDER BY id").fetchall()]
    pick = appts[int(step[1]) % len(appts)] if appts and kind not in ("book", "relink") else None  # type: ignore[call-overload]
    if kind == "book":
        _, staff, slot, composite = step
        service = ids["perm"] if composite else ids["cut"]
        conn.execute(
            "SELECT tests.make_appointment(tests.make_customer(%s, 'K'), %s, %s, %s)",
            [ids["company"][0], service[0], ids["staff"][int(staff)], BASE + dt.timedelta(minutes=20 * int(slot))],  # type: ignore[call-overload]
        )
    elif kind == "move":
        start = BASE + dt.timedelta(minutes=20 * int(step[2]))  # type: ignore[call-overload]
        conn.execute(
            "UPDATE appointments SET starts_at = %s, ends_at = %s + (ends_at - starts_at) WHERE id = %s",
            [start, start, pick],
        )
    elif kind == "cancel":
        conn.execute("UPDATE appointments SET status = 'cancelled' WHERE id = %s", [pick])
    elif kind == "restaff":
        conn.execute("UPDATE appointments SET staff_id = %s WHERE id = %s", [ids["staff"][int(step[2])], pick])  # type: ignore[call-overload]
    elif kind == "reservice":
        service, minutes = (ids["perm"][0], 135) if step[2] else (ids["cut"][0], 30)
        conn.execute(
            "UPDATE appointments SET service_id = %s, ends_at = starts_at + make_interval(mins => %s) WHERE id = %s",
            [service, minutes, pick],
        )
    elif kind == "drop_phase":
        conn.execute(
            "DELETE FROM appointment_phases "
            "WHERE id = (SELECT max(id) FROM appointment_phases WHERE appointment_id = %s)",
            [pick],
        )
    elif kind == "shift_phase":
        conn.execute(
            "UPDATE appointment_phases SET start_time = start_time + %s * interval '10 minutes', "
            "end_time = end_time + %s * interval '10 minutes' "
            "WHERE id = (SELECT min(id) FROM appointment_phases WHERE appointment_id = %s)",
            [step[2], step[2], pick],
        )
    elif kind == "toggle_phase":
        conn.execute(
            "UPDATE appointment_phases SET staff_required = NOT staff_required "
            "WHERE id = (SELECT max(id) FROM appointment_phases WHERE appointment_id = %s)",
            [pick],
        )
    elif kind == "rehome_phase" and appts:
        other = appts[int(step[2]) % len(appts)]  # type: ignore[call-overload]
        conn.execute(
            "UPDATE appointment_phases SET appointment_id = %s, sequence_order = sequence_order + 100 "
            "WHERE id = (SELECT max(id) FROM appointment_phases WHERE appointment_id = %s)",
            [other, pick],
        )
    elif kind == "rewrite_phases":
        conn.execute(
            "UPDATE appointment_phases SET start_time = start_time, end_time = end_time WHERE appointment_id = %s",
            [pick],
        )
    elif kind == "delete":
        conn.execute("DELETE FROM appointments WHERE id = %s", [pick])
    elif kind == "relink":
        conn.execute(
            "UPDATE staff SET calcom_user_id = CASE WHEN calcom_user_id IS NULL THEN 900 + %s END WHERE id = %s",
            [step[1], ids["staff"][int(step[1])]],  # type: ignore[call-overload]
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(op, min_size=1, max_size=25))
def test_busy_time_equals_its_definition(db: Db, steps: list[tuple[object, ...]]) -> None:
    with db.connect() as conn:
        conn.execute(
            "TRUNCATE appointments, appointment_phases, calsync.host_busy_time, customers, staff, services, "
            "companies CASCADE"
        )
        company = conn.execute("SELECT tests.make_company()").fetchone()
        assert company is not None
        ids: dict[str, list[object]] = {"company": [company[0]]}
        ids["staff"] = [
            conn.execute(
                "SELECT tests.make_staff(%s, %s, %s)", [company[0], f"S{i}", 100 if i < 2 else None]
            ).fetchone()[0]  # type: ignore[index]
            for i in range(4)
        ]
        ids["cut"] = [conn.execute("SELECT tests.make_service(%s, 'Schnitt', 30)", [company[0]]).fetchone()[0]]  # type: ignore[index]
        ids["perm"] = [
            conn.execute(
                "SELECT tests.make_service(%s, 'Dauerwelle', 135, tests.dauerwelle_segments())", [company[0]]
            ).fetchone()[0]  # type: ignore[index]
        ]
        conn.commit()
        for step in steps:
            try:
                _apply(conn, ids, step)
                conn.commit()
            except (psycopg.errors.ExclusionViolation, psycopg.errors.UniqueViolation, psycopg.errors.CheckViolation):
                conn.rollback()  # a rule refused the write: nothing changed
            mismatch = conn.execute(MISMATCH).fetchall()
            assert mismatch == [], f"after {step}: busy table and its definition differ: {mismatch}"
