"""What the property tests found, one example each (details in /work/notes/fuzz.md). Each test states what
the rule says; while the database does otherwise it is a strict xfail naming the error it fails with, so
a fix shows up as XPASS (remove the mark, and the bug's entry in oracle.KNOWN_BUGS). Each runs in a
transaction that is rolled back; ``_commit`` runs what a commit would (the deferred rules)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.properties import oracle
from tests.properties.conftest import Base
from tests.properties.harness import Conn, example

UPCOMING = "2031-05-05 10:00+02"


@pytest.fixture
def conn(fx: Conn) -> Iterator[Conn]:
    """The property tests' database, in a transaction of this test's own that is rolled back."""
    with example(fx):
        yield fx


def _commit(conn: Conn) -> None:
    """What COMMIT runs first: the deferred constraint triggers."""
    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    conn.execute("SET CONSTRAINTS ALL DEFERRED")


def bug(name: str, raises: type[BaseException]) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, raises=raises, reason=f"{name}: {oracle.KNOWN_BUGS[name]}")


@pytest.fixture
def salon(base: Base) -> dict[str, Any]:
    """The committed salon (tests.make_salon() and more, conftest.Base)."""
    return {"company": base.company, "customer": base.customers["hans"], "lena": base.staff["lena"], **base.services}


def _service(conn: Conn, salon: dict[str, Any], segments: Any) -> int:
    return int(
        conn.execute(
            "SELECT tests.make_service(%s, 'Fuzz', 60, %s::jsonb)", [salon["company"], json.dumps(segments)]
        ).fetchone()[0]  # type: ignore[index]
    )


def _book(conn: Conn, salon: dict[str, Any], service: int, start: str = UPCOMING, staff: str | None = None) -> int:
    """One live booking, committed (the deferred rules run)."""
    row = conn.execute(
        "SELECT tests.make_appointment(%s, %s, %s, %s)", [salon["customer"], service, staff, start]
    ).fetchone()
    assert row is not None
    _commit(conn)
    return int(row[0])


def _named_or_ok(conn: Conn, sql: str, params: list[Any]) -> str:
    """'ok', or the named rule that refused the statement; anything unnamed is raised as it is."""
    try:
        with conn.transaction():
            conn.execute(sql, params)  # type: ignore[arg-type]
            _commit(conn)
    except psycopg.Error as exc:
        if exc.diag.constraint_name is None:
            raise
        return f"{exc.sqlstate} {exc.diag.constraint_name}"
    return "ok"


def _flagged(conn: Conn, appointment_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT calcom_sync_status, requires_manual_review, sync_error_code, "
        "(SELECT count(*) FROM appointment_phases WHERE appointment_id = a.id) FROM appointments a WHERE id = %s",
        [appointment_id],
    ).fetchone()
    assert row is not None
    return tuple(row)


FLAGGED = ("failed", True, "COMPOSITE_FAILURE", 0)


# ---------------------------------------------------------------- segments the database accepts, then trips on


@pytest.mark.parametrize(
    "segments",
    [
        [{"key": "A", "durationMin": "99999999999"}],  # a numeric string beyond integer
        [{"key": "A", "durationMin": 2**31}],
        [{"key": "A", "durationMin": 30, "order": 10**12}],
        [{"key": "A", "duration": 30, "gap_after": 10**10}],
        [{"key": "A", "durationMin": 2_000_000_000}, {"key": "B", "durationMin": 2_000_000_000}],  # summed
    ],
    ids=["string", "number", "order", "gap_after", "sum"],
)
def test_a_huge_segment_number_flags_the_booking(conn: Conn, salon: dict[str, Any], segments: Any) -> None:
    """A composite booking whose segments give no phases is flagged for manual review, not refused by
    an integer overflow at commit (calsync.segment_minutes, derive_phases, create_missing_phases)."""
    appointment = _book(conn, salon, _service(conn, salon, segments))
    assert _flagged(conn, appointment) == FLAGGED


def test_a_composite_service_takes_any_segments_while_unbooked(conn: Conn, salon: dict[str, Any]) -> None:
    """services_keep_segments_while_booked only guards booked services; the Dauerwelle has no bookings."""
    huge = '[{"key": "A", "durationMin": 1e12}]'
    outcome = _named_or_ok(conn, "UPDATE services SET segments = %s::jsonb WHERE id = %s", [huge, salon["perm"]])
    assert outcome == "ok"


@pytest.mark.parametrize("staff_required", ["maybe", "", 2, [True]])
def test_a_segment_with_an_odd_staff_flag_still_books(conn: Conn, salon: dict[str, Any], staff_required: Any) -> None:
    """staff_required that is no boolean gives a booking with phases (its default) or a flag, not 22P02."""
    service = _service(conn, salon, [{"key": "A", "durationMin": 30, "staff_required": staff_required}])
    appointment = _book(conn, salon, service)
    assert _flagged(conn, appointment)[3] == 1 or _flagged(conn, appointment) == FLAGGED


@pytest.mark.parametrize(
    "segments",
    [
        [{"key": "K" * 51, "durationMin": 30}],
        [{"key": "K" * 47, "duration": 30, "gap_after": 10}],  # fits, but '<key>_gap' does not
        [{"key": "A", "name": "N" * 256, "durationMin": 30}],
    ],
    ids=["key", "gap key", "name"],
)
def test_a_long_segment_key_still_books(conn: Conn, salon: dict[str, Any], segments: Any) -> None:
    """A segment text longer than appointment_phases' column is cut or flagged, not a 22001 at commit."""
    appointment = _book(conn, salon, _service(conn, salon, segments))
    assert _flagged(conn, appointment)[3] >= 1 or _flagged(conn, appointment) == FLAGGED


# ---------------------------------------------------------------- times at the end of timestamptz


def test_a_composite_booking_at_the_end_of_time_is_refused_by_name(conn: Conn, salon: dict[str, Any]) -> None:
    """The Dauerwelle (135 min) at 294276-12-31 22:00 UTC: the booking itself is valid (it ends 22:30), its
    phases would end after timestamptz's last instant. Expected: a named refusal, or a flag."""
    outcome = _named_or_ok(
        conn,
        "SELECT tests.make_appointment(%s, %s, NULL, '294276-12-31 22:00+00', 'confirmed', 30)",
        [salon["customer"], salon["perm"]],
    )
    assert outcome == "23514 appointment_phases_within_time_range"


def test_moving_a_composite_towards_the_end_of_time_is_refused_by_name(conn: Conn, salon: dict[str, Any]) -> None:
    """Moving it 3 hours later: tg_appointments__keep_phases_in_step shifts the phases out of range."""
    appointment = _book(conn, salon, salon["perm"], "294276-12-31 20:00+00")
    outcome = _named_or_ok(
        conn,
        "UPDATE appointments SET starts_at = starts_at + interval '3 hours', ends_at = ends_at + interval '1 hour' "
        "WHERE id = %s",
        [appointment],
    )
    assert outcome == "23514 appointment_phases_within_time_range"


# ---------------------------------------------------------------- contacts


@pytest.mark.parametrize(
    ("email", "phone"),
    [("\t", None), ("\n", None), ("\u00a0", None), (None, "\t"), (None, " anonymous_1763495863_2d3eaf7e")],
    ids=["tab e-mail", "newline e-mail", "no-break-space e-mail", "tab phone", "padded anonymous phone"],
)
def test_a_blank_contact_gets_the_placeholder(
    conn: Conn, salon: dict[str, Any], email: str | None, phone: str | None
) -> None:
    """Whitespace is no contact: the customer gets customer_<id>@placeholder.invalid and the flag."""
    company = salon["company"]
    row = conn.execute(
        "INSERT INTO customers (company_id, name, email, phone) VALUES (%s, 'Anrufer', %s, %s) "
        "RETURNING id, email, email_is_placeholder",
        [company, email, phone],
    ).fetchone()
    assert row is not None
    assert (row[1], row[2]) == (oracle.placeholder_email(row[0]), True)


def test_blank_emails_do_not_collide(conn: Conn, salon: dict[str, Any]) -> None:
    """Blank e-mails become NULL because they collided on customers_email_unique (migration 2025_11_11):
    two customers with a tab for an e-mail (and a phone) are both saved."""
    company = salon["company"]
    for phone in ("+4915111111111", "+4915122222222"):
        conn.execute(
            "INSERT INTO customers (company_id, name, email, phone) VALUES (%s, 'Kunde', %s, %s)",
            [company, "\t", phone],
        )


def test_a_placeholder_held_by_someone_else_refuses_by_name(conn: Conn, salon: dict[str, Any]) -> None:
    """Not a bug, a corner the rule leaves: a real address that is another customer's future placeholder
    makes that customer unsavable without a contact, refused by name (customers_email_unique)."""
    company = salon["company"]
    upcoming = conn.execute("SELECT nextval('customers_id_seq') + 2").fetchone()[0]  # type: ignore[index]
    conn.execute(
        "INSERT INTO customers (company_id, name, email) VALUES (%s, 'Schlau', %s)",
        [company, oracle.placeholder_email(upcoming)],
    )
    outcome = _named_or_ok(conn, "INSERT INTO customers (company_id, name) VALUES (%s, 'Ohne Kontakt')", [company])
    assert outcome == "23505 customers_email_unique"


# ---------------------------------------------------------------- is_composite and the outbox


def test_a_booked_service_cannot_turn_composite_behind_its_bookings(conn: Conn, salon: dict[str, Any]) -> None:
    """The haircut becomes a Dauerwelle while an upcoming haircut is booked: either the change is refused
    (services_keep_segments_while_booked) or the booking follows its service (is_composite, phases)."""
    appointment = _book(conn, salon, salon["cut"], staff=salon["lena"])
    outcome = _named_or_ok(
        conn,
        "UPDATE services SET composite = true, segments = tests.dauerwelle_segments() WHERE id = %s",
        [salon["cut"]],
    )
    if outcome == "ok":
        row = conn.execute(
            "SELECT a.is_composite, s.composite FROM appointments a JOIN services s ON s.id = a.service_id "
            "WHERE a.id = %s",
            [appointment],
        ).fetchone()
        assert row is not None
        assert row[0] == row[1], "the upcoming appointment's is_composite contradicts its service"
    else:
        assert outcome == "23514 services_keep_segments_while_booked"


@pytest.mark.parametrize(
    "savepoint",
    [False, True],
    ids=["plain transaction", "inside a savepoint"],
)
def test_a_new_composite_booking_enqueues_one_create(conn: Conn, salon: dict[str, Any], savepoint: bool) -> None:
    """README (outbox): phases written in the booking's own transaction enqueue nothing of their own; the
    booking's create covers them. Laravel's nested DB::transaction() is a SAVEPOINT."""
    book = "SELECT tests.make_appointment(%s, %s, %s, %s)"
    params = [salon["customer"], salon["perm"], salon["lena"], UPCOMING]
    if savepoint:
        with conn.transaction():  # psycopg: a block inside a transaction is a savepoint
            appointment = conn.execute(book, params).fetchone()[0]  # type: ignore[index]
    else:
        appointment = conn.execute(book, params).fetchone()[0]  # type: ignore[index]
    _commit(conn)
    events = conn.execute(
        "SELECT type FROM calsync.outbox WHERE aggregateid = %s ORDER BY seq", [str(appointment)]
    ).fetchall()
    assert [e[0] for e in events] == ["create"]
