"""calsync.written_by_this_transaction(xmin) with real transactions and savepoints (revision 0018, fuzz bug 7):
ours at the top level and under savepoints that were released, not what another transaction committed (even one
that began after ours), not a frozen row; and phases changed on their own still reschedule their appointment."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import Db

UPCOMING = "2031-05-05 10:00+02"


def _one(conn: psycopg.Connection[Any], sql: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def _ours(conn: psycopg.Connection[Any], appointment: int) -> bool:
    return bool(
        _one(conn, "SELECT calsync.written_by_this_transaction(xmin) FROM appointments WHERE id = %s", [appointment])
    )


def _perm_booking(conn: psycopg.Connection[Any]) -> int:
    """A Dauerwelle booked and committed (its phases derived at commit)."""
    company = _one(conn, "SELECT tests.make_company()")
    perm = _one(conn, "SELECT tests.make_service(%s, 'Dauerwelle', 135, tests.dauerwelle_segments())", [company])
    customer = _one(conn, "SELECT tests.make_customer(%s)", [company])
    appointment = int(_one(conn, "SELECT tests.make_appointment(%s, %s, NULL, %s)", [customer, perm, UPCOMING]))
    conn.commit()
    return appointment


def _phase_events(conn: psycopg.Connection[Any], appointment: int) -> int:
    return int(
        _one(
            conn,
            "SELECT count(*) FROM calsync.outbox WHERE aggregateid = %s AND payload->>'phases' = 'changed'",
            [str(appointment)],
        )
    )


def test_rows_of_this_transaction_and_its_savepoints_are_ours(db: Db) -> None:
    with db.connect() as conn:
        appointment = _perm_booking(conn)
        assert not _ours(conn, appointment), "a row committed by an earlier transaction"
        conn.execute("UPDATE appointments SET source = 'top' WHERE id = %s", [appointment])
        assert _ours(conn, appointment), "written at the top level"
        conn.rollback()
        conn.execute("SELECT pg_current_xact_id()")  # this transaction has an xid before the savepoints
        with conn.transaction():  # SAVEPOINT … RELEASE
            conn.execute("UPDATE appointments SET source = 'sp' WHERE id = %s", [appointment])
            assert _ours(conn, appointment), "written in the running subtransaction"
        assert _ours(conn, appointment), "written in a released subtransaction"
        try:
            with conn.transaction():
                conn.execute("UPDATE appointments SET source = 'rolled back' WHERE id = %s", [appointment])
                raise RuntimeError
        except RuntimeError:
            pass
        assert _one(conn, "SELECT source FROM appointments WHERE id = %s", [appointment]) == "sp"
        assert _ours(conn, appointment), "the version written before the rolled-back savepoint"
        conn.commit()
        assert not _ours(conn, appointment), "once committed, the next transaction did not write it"


def test_a_row_committed_by_a_later_transaction_is_not_ours(db: Db) -> None:
    """Read committed: another transaction that got its xid after ours commits, and we see its row."""
    with db.connect() as mine, db.connect(autocommit=True) as other:
        appointment = _perm_booking(mine)
        mine.execute("SELECT pg_current_xact_id()")
        with mine.transaction():  # a subtransaction with an xid of its own, later than the other's
            mine.execute("CREATE TEMP TABLE scratch (x int) ON COMMIT DROP")
            other.execute("UPDATE appointments SET source = 'other' WHERE id = %s", [appointment])
            assert _one(mine, "SELECT source FROM appointments WHERE id = %s", [appointment]) == "other"
            assert not _ours(mine, appointment)
        mine.rollback()


def test_a_frozen_row_is_not_ours(db: Db) -> None:
    with db.connect(autocommit=True) as conn:
        appointment = _perm_booking(conn)
        conn.execute("VACUUM (FREEZE) appointments")
        with conn.transaction():
            conn.execute("SELECT pg_current_xact_id()")
            assert not _ours(conn, appointment)


def test_phases_changed_on_their_own_still_reschedule(db: Db) -> None:
    """The fix must not swallow real events: phases the app changes in a later transaction, under a savepoint
    or not, reschedule their appointment; written with it under a savepoint, they don't."""
    with db.connect() as conn:
        appointment = _perm_booking(conn)
        assert _phase_events(conn, appointment) == 0, "booked: its create covers the phases"
        with conn.transaction():
            conn.execute(
                "UPDATE appointment_phases SET end_time = end_time + interval '5 minutes' "
                "WHERE appointment_id = %s AND sequence_order = 1",
                [appointment],
            )
        conn.commit()
        assert _phase_events(conn, appointment) == 1, "a phase changed on its own, under a savepoint"
        conn.execute(
            "UPDATE appointment_phases SET end_time = end_time + interval '5 minutes' "
            "WHERE appointment_id = %s AND sequence_order = 1",
            [appointment],
        )
        conn.commit()
        assert _phase_events(conn, appointment) == 2, "and without one"
        with conn.transaction():
            conn.execute(
                "UPDATE appointments SET starts_at = starts_at + interval '1 day', "
                "ends_at = ends_at + interval '1 day' WHERE id = %s",
                [appointment],
            )
        conn.commit()
        assert _phase_events(conn, appointment) == 2, "phases shifted with their appointment under a savepoint"
        types = [r[0] for r in conn.execute("SELECT type FROM calsync.outbox WHERE aggregateid = %s ORDER BY seq",
                                            [str(appointment)])]  # fmt: skip
        assert types == ["create", "reschedule", "reschedule", "reschedule"]
