"""The appointment rules restated as queries over the tables (not through calsync's functions or views),
and the checks that tie a write's outcome to its input: stored values, phases, flags, version, outbox."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from psycopg import sql

from tests.properties import oracle
from tests.properties.harness import Conn, Failure, service_segments, value

# Live staff-required time, restated: a live appointment with staff is busy in its phases that need staff
# (those of positive length) when it has phases, else for its whole time. The host is the Cal.com user
# when the staff row has one, else the staff row (one person, two staff rows: one host).
BUSY = """
WITH live AS (
    SELECT a.id, a.starts_at, a.ends_at,
           CASE WHEN s.calcom_user_id IS NOT NULL THEN 'calcom_user:' || s.calcom_user_id
                ELSE 'staff:' || s.id END AS host
    FROM appointments a JOIN staff s ON s.id = a.staff_id
    WHERE a.status NOT IN ('cancelled', 'no_show')
), busy AS (
    SELECT l.id AS appointment_id, p.id AS phase_id, l.host, tstzrange(p.start_time, p.end_time, '[)') AS busy
    FROM live l JOIN appointment_phases p ON p.appointment_id = l.id
    WHERE p.staff_required AND p.end_time > p.start_time
    UNION ALL
    SELECT l.id, NULL, l.host, tstzrange(l.starts_at, l.ends_at, '[)')
    FROM live l
    WHERE l.ends_at > l.starts_at AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = l.id)
)
"""

# rule -> query listing the rows that break it (the queries may use BUSY's CTEs)
CHECKS: dict[str, str] = {
    "status is one of the app's": "SELECT id, status FROM appointments WHERE status NOT IN "
    "('pending', 'confirmed', 'scheduled', 'booked', 'in_progress', 'completed', 'cancelled', 'no_show')",
    "a live appointment has a service": "SELECT id FROM appointments "
    "WHERE status NOT IN ('cancelled', 'no_show') AND service_id IS NULL",
    "a live appointment ends after it starts": "SELECT id FROM appointments "
    "WHERE status NOT IN ('cancelled', 'no_show') AND NOT (ends_at IS NOT NULL AND ends_at > starts_at)",
    "is_composite follows the service": "SELECT a.id FROM appointments a JOIN services s ON s.id = a.service_id "
    "WHERE a.is_composite <> s.composite",
    "one live appointment per customer, start and service": "SELECT customer_id, starts_at, service_id "
    "FROM appointments WHERE status NOT IN ('cancelled', 'no_show') GROUP BY 1, 2, 3 HAVING count(*) > 1",
    "no host is booked twice at once": "SELECT x.appointment_id, y.appointment_id, x.host FROM busy x "
    "JOIN busy y ON x.host = y.host AND x.appointment_id < y.appointment_id AND x.busy && y.busy",
    "host_busy_time is the live staff-required time": "(SELECT appointment_id, busy "
    "FROM calsync.host_busy_time EXCEPT ALL SELECT appointment_id, range_agg(busy) FROM busy GROUP BY 1) UNION ALL "
    "(SELECT appointment_id, range_agg(busy) FROM busy GROUP BY 1 "
    "EXCEPT ALL SELECT appointment_id, busy FROM calsync.host_busy_time)",
    "a live composite appointment has phases, or is flagged": "SELECT a.id FROM appointments a "
    "WHERE a.status NOT IN ('cancelled', 'no_show') AND a.is_composite "
    "AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id) "
    "AND NOT (a.calcom_sync_status = 'failed' AND a.requires_manual_review "
    "         AND a.sync_error_code = 'COMPOSITE_FAILURE' "
    "         AND EXISTS (SELECT 1 FROM calsync.integrity_issues i WHERE i.rule = 'appointments_composite_has_phases' "
    "                     AND i.table_name = 'appointments' AND i.row_id = a.id AND i.resolved_at IS NULL))",
    "phases follow their appointment's start": "SELECT p.id FROM appointment_phases p "
    "JOIN appointments a ON a.id = p.appointment_id "
    "WHERE p.start_time <> a.starts_at + make_interval(mins => p.start_offset_minutes) "
    "OR p.end_time <> a.starts_at + make_interval(mins => p.start_offset_minutes + p.duration_minutes)",
    "only composites have phases": "SELECT a.id FROM appointments a WHERE NOT a.is_composite "
    "AND EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)",
}
_RULES = list(CHECKS)
_ALL_CHECKS = sql.SQL(BUSY) + sql.SQL(" UNION ALL ").join(
    sql.SQL("(SELECT {} AS rule, to_jsonb(x)::text FROM ({}) x)").format(i, sql.SQL(q))  # type: ignore[arg-type]
    for i, q in enumerate(CHECKS.values())
)


def broken_rules(conn: Conn, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every rule in CHECKS but ``skip``, in one round trip: rule -> the rows that break it."""
    out: dict[str, list[str]] = {}
    for i, row in conn.execute(_ALL_CHECKS).fetchall():
        if _RULES[i] not in skip:
            out.setdefault(_RULES[i], []).append(row)
    return out


# ---------------------------------------------------------------- an appointment's state


@dataclass(frozen=True)
class Appt:
    """An appointment as a write leaves it (or would)."""

    id: int | None
    customer: int
    service: int | None
    staff: str | None
    starts: Decimal
    starts_text: str
    ends: Decimal | None
    status: str
    is_composite: bool
    version: int = 1
    calcom_booking_id: int | None = None
    calcom_uid: str | None = None
    sync_origin: str | None = None
    phases: int = 0
    flagged: bool = False

    @property
    def live(self) -> bool:
        return self.status not in oracle.NOT_LIVE


_APPT = """
SELECT a.id, a.customer_id, a.service_id, a.staff_id::text, extract(epoch FROM a.starts_at), a.starts_at::text,
       extract(epoch FROM a.ends_at), a.status, a.is_composite, a.version, a.calcom_booking_id,
       a.calcom_v2_booking_uid, a.sync_origin,
       (SELECT count(*)::int FROM appointment_phases p WHERE p.appointment_id = a.id),
       a.calcom_sync_status = 'failed' AND a.sync_error_code IS NOT DISTINCT FROM 'COMPOSITE_FAILURE'
FROM appointments a WHERE a.id = %s
"""


def load(conn: Conn, appointment_id: int) -> Appt:
    row = conn.execute(_APPT, [appointment_id]).fetchone()
    assert row is not None
    return Appt(*row)


def composite_of(conn: Conn, service_id: int | None) -> bool | None:
    if service_id is None:
        return None
    return bool(value(conn, "SELECT composite FROM services WHERE id = %s", [service_id]))


def derivation(conn: Conn, service_id: int | None) -> oracle.Derivation:
    assert service_id is not None
    return oracle.derive(service_segments(conn, service_id))


def check_phases(conn: Conn, a: Appt) -> None:
    """A composite appointment's phases are exactly its service's segments, placed at its start."""
    d = derivation(conn, a.service)
    rows = conn.execute(
        "SELECT sequence_order, phase_type, segment_name, segment_key, start_offset_minutes, duration_minutes, "
        "staff_required, extract(epoch FROM start_time), extract(epoch FROM end_time) "
        "FROM appointment_phases WHERE appointment_id = %s ORDER BY sequence_order",
        [a.id],
    ).fetchall()
    got = [oracle.Phase(*r[:7]) for r in rows]
    assert d.problem is None, f"appointment {a.id} has phases though its segments are unusable ({d.problem})"
    assert got == list(d.phases), f"appointment {a.id}: phases {got} but its segments give {list(d.phases)}"
    for p, r in zip(d.phases, rows, strict=True):
        expected = (oracle.shifted(a.starts, p.start_offset), oracle.shifted(a.starts, p.start_offset + p.duration))
        assert (r[7], r[8]) == expected, f"appointment {a.id} phase {p.sequence_order} at {r[7:]} not {expected}"


# ---------------------------------------------------------------- refusals the input justifies

_CONFLICT = re.compile(
    r"conflicts with existing key \((?:[^()]|\([^)]*\))*\)=\((?P<host>[^,]+), (?P<busy>.+), (?P<other>\d+)\)\.?$"
)


def busy_intervals(conn: Conn, a: Appt) -> list[tuple[Decimal, Decimal]]:
    """The staff-required time ``a`` would reserve (README 0012), from the oracle's phases."""
    if not a.live or a.staff is None:
        return []
    if a.is_composite and a.service is not None:
        d = derivation(conn, a.service)
        if d.problem is None and not d.bugs:
            spans = [
                (oracle.shifted(a.starts, p.start_offset), oracle.shifted(a.starts, p.start_offset + p.duration))
                for p in d.phases
                if p.staff_required
            ]
            return [(lo, hi) for lo, hi in spans if hi > lo]
    if a.ends is not None and a.ends > a.starts:
        return [(a.starts, a.ends)]
    return []


_OVERLAP = sql.SQL(BUSY) + sql.SQL(
    "SELECT EXISTS (SELECT 1 FROM busy b, staff s, unnest(%s::float8[], %s::float8[]) AS r(lo, hi) "
    "WHERE b.appointment_id = %s AND b.appointment_id IS DISTINCT FROM %s AND s.id = %s "
    "AND b.host = CASE WHEN s.calcom_user_id IS NOT NULL THEN 'calcom_user:' || s.calcom_user_id "
    "                  ELSE 'staff:' || s.id END "
    "AND b.busy && tstzrange(to_timestamp(r.lo), to_timestamp(r.hi), '[)'))"
)


def _host_overlap(conn: Conn, failure: Failure, a: Appt) -> bool:
    """23P01 is justified when the appointment the error names is a live booking of the same host whose
    staff-required time overlaps what this write reserves."""
    m = _CONFLICT.search(failure.detail or "")
    if m is None or a.staff is None:
        return False
    spans = busy_intervals(conn, a)
    los, his = [float(lo) for lo, _ in spans], [float(hi) for _, hi in spans]
    return bool(value(conn, _OVERLAP, [los, his, int(m["other"]), a.id, a.staff]))


def _other_live(conn: Conn, a: Appt, where: str, params: list[Any]) -> bool:
    """Is there another live appointment ``where`` …?"""
    query = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM appointments a WHERE a.status NOT IN ('cancelled', 'no_show') "
        "AND a.id IS DISTINCT FROM %s AND {})"
    ).format(sql.SQL(where))  # type: ignore[arg-type]
    return bool(value(conn, query, [a.id, *params]))


def justified(conn: Conn, failure: Failure, a: Appt, *, version: int | None = None, old: Appt | None = None,
              checks_composite: bool = False) -> bool:  # fmt: skip
    """Does the new state ``a`` really break the named rule the write was refused with? ``version`` is
    the version the UPDATE named, ``checks_composite`` whether it named is_composite or service_id (the
    trigger appointments_composite_matches_service then compares them)."""
    rule = (failure.sqlstate, failure.constraint)
    if rule == ("23514", "appointments_status_known"):
        return a.status not in oracle.STATUSES
    if rule == ("23514", "appointments_service_required"):
        return a.live and a.service is None
    if rule == ("23514", "appointments_ends_after_start"):
        return a.live and (a.ends is None or a.ends <= a.starts)
    if rule == ("23514", "appointments_composite_matches_service"):
        composite = composite_of(conn, a.service)
        return checks_composite and composite is not None and a.is_composite != composite
    if rule == ("23505", "appointments_one_live_per_customer_slot"):
        return a.live and _other_live(
            conn, a, "a.customer_id = %s AND a.starts_at = %s::timestamptz AND a.service_id = %s",
            [a.customer, a.starts_text, a.service],
        )  # fmt: skip
    if rule == ("23505", "appointments_one_live_per_calcom_booking_id"):
        return a.live and _other_live(conn, a, "a.calcom_booking_id = %s", [a.calcom_booking_id])
    if rule == ("23505", "appointments_one_live_per_calcom_booking_uid"):
        return a.live and _other_live(conn, a, "a.calcom_v2_booking_uid = %s", [a.calcom_uid])
    if rule == ("40001", "appointments_version_check"):
        return old is not None and version is not None and version != old.version
    if rule == ("23P01", "host_busy_time_no_overlap"):
        return _host_overlap(conn, failure, a)
    return False


def predicted_bugs(conn: Conn, a: Appt, *, derives: bool, shifts: bool) -> dict[str, str]:
    """The known bugs (SQLSTATE -> bug) this write runs into: ``derives`` when its commit derives the
    phases (a live composite without phases), ``shifts`` when it moves phases it already has."""
    if not (a.is_composite and a.service is not None and ((derives and a.live) or shifts)):
        return {}
    d = derivation(conn, a.service)
    return d.bugs if derives else {}


def phases_leave_time_range(conn: Conn, a: Appt, *, derives: bool, shifts: bool) -> bool:
    """Would this write place phases past timestamptz's end (derived at commit, or shifted by a move)? The
    rule appointment_phases_within_time_range refuses it."""
    if not (a.is_composite and a.service is not None and ((derives and a.live) or shifts)):
        return False
    d = derivation(conn, a.service)
    return d.problem is None and oracle.phases_out_of_range(a.starts, d.phases)


def outbox_since(conn: Conn, appointment_id: int, seq: int) -> tuple[list[str], list[str]]:
    """Events enqueued for the appointment after ``seq``: (by its own triggers, by its phases')."""
    rows = conn.execute(
        "SELECT type, payload ? 'phases' FROM calsync.outbox WHERE aggregateid = %s AND seq > %s ORDER BY seq",
        [str(appointment_id), seq],
    ).fetchall()
    return [t for t, p in rows if not p], [t for t, p in rows if p]


def outbox_seq(conn: Conn) -> int:
    return int(value(conn, "SELECT coalesce(max(seq), 0) FROM calsync.outbox"))


def same_except_bookkeeping(a: Appt, b: Appt) -> Appt:
    """``b`` with ``a``'s id, version, phase count and flag (what the database keeps itself)."""
    return replace(b, id=a.id, version=a.version, phases=a.phases, flagged=a.flagged)
