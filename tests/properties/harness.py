"""Running fuzzed writes against the database: each write in a savepoint followed by what its commit would
run (``SET CONSTRAINTS ALL IMMEDIATE`` fires the deferred rules), each example in a transaction that is
rolled back. Failures are caught with their SQLSTATE and constraint; the allow-list says which ones are
our named rules. Counts of cases and outcomes are kept for the terminal summary.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from psycopg.abc import Query

from tests.properties import oracle

Conn = psycopg.Connection[tuple[Any, ...]]

# ---------------------------------------------------------------- profiles

# Share of the cases each property gets; CALSYNC_FUZZ_EXAMPLES is the total (make fuzz: the soak profile).
WEIGHTS = {"customers": 0.35, "segments": 0.30, "appointments": 0.35}
PROFILE = os.environ.get("CALSYNC_FUZZ_PROFILE", "ci")
TOTAL = int(os.environ.get("CALSYNC_FUZZ_EXAMPLES") or (10_500 if PROFILE == "soak" else 600))

for _name in ("ci", "soak"):
    settings.register_profile(
        f"calsync-{_name}",
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        print_blob=True,
    )


def fuzz_settings(prop: str) -> settings:
    """The settings of one property under the selected profile."""
    return settings(settings.get_profile(f"calsync-{PROFILE}"), max_examples=max(1, round(TOTAL * WEIGHTS[prop])))


# ---------------------------------------------------------------- stats


@dataclass
class Stats:
    cases: Counter[str]
    outcomes: Counter[tuple[str, str]]

    def record(self, prop: str, outcome: str) -> None:
        self.outcomes[prop, outcome] += 1


STATS = Stats(Counter(), Counter())


# ---------------------------------------------------------------- failures and the allow-list

# (SQLSTATE, constraint) of every named rule a write may be refused with, and the revision that made it.
NAMED_RULES: dict[tuple[str, str], str] = {
    ("40001", "appointments_version_check"): "0007",
    ("23514", "appointments_service_required"): "0008",
    ("23514", "appointments_ends_after_start"): "0008",
    ("23514", "appointments_status_known"): "0008",
    ("23514", "appointments_calcom_sync_status_known"): "0008",
    ("23514", "appointments_composite_matches_service"): "0008",
    ("23505", "appointments_one_live_per_customer_slot"): "0009",
    ("23505", "appointments_one_live_per_calcom_booking_id"): "0010",
    ("23505", "appointments_one_live_per_calcom_booking_uid"): "0010",
    ("23505", "appointment_phases_one_per_calcom_booking_id"): "0010",
    ("23505", "appointment_phases_one_per_calcom_booking_uid"): "0010",
    ("23505", "appointment_phases_one_per_sequence"): "0011",
    ("23514", "appointment_phases_sequence_required"): "0011",
    ("23514", "services_keep_segments_while_booked"): "0011",
    ("23514", "appointment_phases_within_time_range"): "0018",
    ("23P01", "host_busy_time_no_overlap"): "0012",
    ("23505", "customers_email_unique"): "0001 (the app's global unique e-mail)",
}
# The base schema's column rules (0001): a value too long for its varchar(255), a NULL in a NOT NULL column.
COLUMN_RULES = ("22001", "23502")


@dataclass(frozen=True)
class Failure:
    stage: str  # "statement" or "commit"
    sqlstate: str | None
    constraint: str | None
    column: str | None
    message: str
    detail: str | None
    context: str | None

    @property
    def rule(self) -> str:
        return f"{self.sqlstate} {self.constraint or self.column or '-'}"

    def named(self) -> bool:
        return (self.sqlstate or "", self.constraint or "") in NAMED_RULES

    def __str__(self) -> str:
        return f"{self.rule} at {self.stage}: {self.message} / {self.detail or ''} / {self.context or ''}"


def failure_of(exc: psycopg.Error, stage: str) -> Failure:
    d = exc.diag
    return Failure(stage, exc.sqlstate, d.constraint_name, d.column_name, str(d.message_primary or exc),
                   d.message_detail, d.context)  # fmt: skip


@contextmanager
def example(conn: Conn) -> Iterator[None]:
    """One example: a transaction that is always rolled back."""
    conn.rollback()
    try:
        conn.execute("SET CONSTRAINTS ALL DEFERRED")
        yield
    finally:
        conn.rollback()


def attempt(conn: Conn, sql: Query, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[list[Any], Failure | None]:
    """Run one write and its commit-time rules in a savepoint: (rows, None) or ([], the failure)."""
    stage = "statement"
    try:
        with conn.transaction():
            conn.execute("SET CONSTRAINTS ALL DEFERRED")
            cur = conn.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
            stage = "commit"
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            conn.execute("SET CONSTRAINTS ALL DEFERRED")
        return rows, None
    except psycopg.Error as exc:
        return [], failure_of(exc, stage)


def value(conn: Conn, sql: Query, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def known_bug(prop: str, bug: str) -> None:
    assert bug in oracle.KNOWN_BUGS, bug
    STATS.record(prop, f"known bug {bug}")


# ---------------------------------------------------------------- reading segments as the oracle needs them

_ELEMENTS = """
SELECT e.idx::int, jsonb_typeof(e.value), e.value->>'key', e.value->>'name', e.value->>'durationMin',
       e.value->>'duration_minutes', e.value->>'duration', e.value->>'order', e.value->>'gap_after',
       e.value->>'type', e.value->>'staff_required'
FROM jsonb_array_elements(CASE jsonb_typeof(%(s)s::jsonb) WHEN 'array' THEN %(s)s::jsonb ELSE '[]' END)
         WITH ORDINALITY AS e(value, idx)
ORDER BY e.idx
"""


def segments_of(conn: Conn, segments: str | None) -> oracle.Segments:
    """Segments (jsonb text, None for SQL NULL) as the JSON reads, through PostgreSQL's own jsonb -> text."""
    typ = value(conn, "SELECT jsonb_typeof(%s::jsonb)", [segments])
    rows = conn.execute(_ELEMENTS, {"s": segments}).fetchall()
    return oracle.Segments(typ, tuple(oracle.Element(*r) for r in rows))


def service_segments(conn: Conn, service_id: int) -> oracle.Segments:
    return segments_of(conn, value(conn, "SELECT segments::text FROM services WHERE id = %s", [service_id]))


def epoch(conn: Conn, literal: str | None, seconds: float | None) -> tuple[Decimal, str] | None:
    """The instant an input stands for, as (epoch seconds, canonical text); None when it is outside
    timestamptz's range (an input the client could not send, not a rule of ours)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT extract(epoch FROM t), t::text "
                "FROM (SELECT coalesce(%s::timestamptz, to_timestamp(%s)) AS t) x",
                [literal, seconds],
            ).fetchone()
    except psycopg.errors.DataError:
        return None
    assert row is not None
    return Decimal(row[0]), str(row[1])
