"""Deploy safety of the integrity revisions, on real data: pre-flight, new-rows-only, down and up, no rewrite,
no INVALID index left behind, and concurrent writers."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import sqlalchemy as sa

from tests.conftest import Db
from worker.devtools import datagen
from worker.ops import migrate, preflight

PARAMS = datagen.Params(salons=2, appointments_per_salon=300, anchor=dt.date(2026, 11, 25))


@contextmanager
def env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def app_database(db: Db, revision: str = "0001") -> None:
    """The app's data on an older revision (default: 0001, the database as it is today)."""
    migrate.upgrade(db.url, revision)
    with db.connect() as conn:
        datagen.generate(conn, PARAMS)


def add_incident_rows(db: Db) -> dict[str, int]:
    """Rows that break the rules, as in the incident: a duplicate slot on one Cal.com booking, an appointment
    without a service, and one person booked twice under two staff rows."""
    with db.connect() as conn:
        a = conn.execute(
            "SELECT a.id, a.customer_id, a.service_id, a.starts_at, a.ends_at, a.company_id FROM appointments a "
            "WHERE a.status = 'confirmed' AND NOT a.is_composite ORDER BY a.id LIMIT 1"
        ).fetchone()
        assert a is not None
        first, customer, service, starts, ends, company = a
        conn.execute("UPDATE appointments SET calcom_booking_id = 13060966 WHERE id = %s", [first])
        dup = conn.execute(
            "INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status, "
            "calcom_booking_id) VALUES (%s, %s, %s, %s, %s, 'confirmed', 13060966) RETURNING id",
            [company, customer, service, starts, ends],
        ).fetchone()
        no_service = conn.execute(
            "INSERT INTO appointments (company_id, customer_id, starts_at, ends_at, status) "
            "VALUES (%s, %s, %s, %s, 'confirmed') RETURNING id",
            [company, customer, starts + dt.timedelta(days=3), ends + dt.timedelta(days=3)],
        ).fetchone()
        # the two staff rows of one person (one Cal.com user), booked at overlapping times
        row = conn.execute(
            "SELECT s1.id, s2.id FROM staff s1 JOIN staff s2 ON s1.calcom_user_id = s2.calcom_user_id "
            "AND s1.id < s2.id AND s1.company_id = %s LIMIT 1",
            [company],
        ).fetchone()
        assert row is not None and dup is not None and no_service is not None
        t = dt.datetime(2030, 12, 6, 13, 0, tzinfo=dt.UTC)
        ids = []
        for staff in row:
            r = conn.execute(
                "INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, ends_at, status) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'confirmed') RETURNING id",
                [company, customer, service, staff, t, t + dt.timedelta(minutes=30)],
            ).fetchone()
            assert r is not None
            ids.append(int(r[0]))  # type: ignore[call-overload]
            customer += 1  # type: ignore[operator]
        conn.commit()
    return {"first": int(first), "dup": int(dup[0]), "no_service": int(no_service[0]), "host_clash": ids[1]}  # type: ignore[call-overload]


def test_whole_chain_up_down_up_with_data(fresh_db: Db) -> None:
    app_database(fresh_db)
    migrate.upgrade(fresh_db.url, "heads")
    with fresh_db.connect() as conn:
        busy = conn.execute("SELECT count(*) FROM calsync.host_busy_time").fetchone()
        live = conn.execute(
            "SELECT count(*) FROM appointments WHERE status NOT IN ('cancelled', 'no_show') AND staff_id IS NOT NULL"
        ).fetchone()
        phaseless = conn.execute(
            "SELECT count(*) FROM appointments a WHERE a.is_composite AND a.status NOT IN ('cancelled', 'no_show') "
            "AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id)"
        ).fetchone()
        anonymous = conn.execute(
            "SELECT count(*) FROM customers WHERE email IS NULL AND NOT calsync.is_usable_phone(phone)"
        ).fetchone()
        rebooked = conn.execute("SELECT count(*) FROM calsync.outbox WHERE payload->>'phases' = 'changed'").fetchone()
        backlog = conn.execute(
            "SELECT (SELECT count(*) FROM appointments WHERE calcom_sync_status = 'pending' "
            "        AND calsync.is_bookable_status(status) AND ends_at > now()), "
            "(SELECT count(DISTINCT aggregateid) FROM calsync.outbox WHERE payload ? 'adopted_from')"
        ).fetchone()
        diagnosed = conn.execute(
            "SELECT (SELECT count(*) FROM remediation.failure_diagnoses), "
            "(SELECT count(*) FROM appointments WHERE calcom_sync_status = 'failed' OR requires_manual_review)"
        ).fetchone()
    assert busy and live and int(busy[0]) >= int(live[0]) > 0  # type: ignore[call-overload]
    assert phaseless == (0,), "the backfill derived the legacy-shape composites' phases"
    assert anonymous == (0,), "the backfill gave every uncontactable customer a placeholder"
    assert rebooked == (0,), "the phases the backfill derived rebook nothing at Cal.com (no mass e-mails)"
    assert backlog is not None and backlog[0] == backlog[1] > 0, f"the app's pending backlog was adopted: {backlog}"
    assert diagnosed is not None and diagnosed[0] == diagnosed[1] > 0, f"every failure was diagnosed: {diagnosed}"

    migrate.downgrade(fresh_db.url, "0001")
    with fresh_db.connect() as conn:
        assert conn.execute("SELECT to_regnamespace('calsync')").fetchone() == (None,)
        (n,) = conn.execute("SELECT count(*) FROM appointments").fetchone()  # type: ignore[misc]
    assert n == 600 + 0, "the downgrade keeps every appointment"
    migrate.upgrade(fresh_db.url, "heads")
    assert migrate.current_heads(fresh_db.url) == migrate.code_heads()


@pytest.mark.parametrize(
    "revision", ["0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011", "0012", "0019"]
)
def test_each_revision_down_and_up_with_data(fresh_db: Db, revision: str) -> None:
    app_database(fresh_db)
    migrate.upgrade(fresh_db.url, revision)
    migrate.downgrade(fresh_db.url, "-1")
    migrate.upgrade(fresh_db.url, revision)
    assert migrate.current_heads(fresh_db.url) == {revision}


def test_error_column_change_is_catalog_only(fresh_db: Db) -> None:
    app_database(fresh_db, "0002")
    with fresh_db.connect() as conn:
        before = conn.execute("SELECT pg_relation_filenode('appointments')").fetchone()
    migrate.upgrade(fresh_db.url, "0003")
    with fresh_db.connect() as conn:
        after = conn.execute("SELECT pg_relation_filenode('appointments')").fetchone()
        long = "x" * 5000
        conn.execute("UPDATE appointments SET sync_error_message = %s WHERE id = 1", [long])
        assert conn.execute("SELECT length(sync_error_message) FROM appointments WHERE id = 1").fetchone() == (5000,)
    assert before == after, "varchar(255) -> text must not rewrite the table"


def test_preflight_refuses_with_a_readable_report(fresh_db: Db) -> None:
    app_database(fresh_db, "0007")
    rows = add_incident_rows(fresh_db)
    with pytest.raises(sa.exc.DBAPIError) as err:
        migrate.upgrade(fresh_db.url, "heads")
    orig = err.value.orig
    assert isinstance(orig, psycopg.Error) and orig.sqlstate == "CS001"
    assert orig.diag.message_primary == (
        "calsync pre-flight stopped revision 0008: 1 row(s) of appointments break rule "
        "appointments_service_required (a live appointment needs a service)"
    )
    assert orig.diag.message_detail == f"first ids: {rows['no_service']}"
    assert "WHERE service_id IS NULL" in (orig.diag.message_hint or "")
    assert "CALSYNC_PREFLIGHT=new-rows-only" in (orig.diag.message_hint or "")
    assert migrate.current_heads(fresh_db.url) == {"0007"}, "the refused revision left nothing behind"


def test_preflight_report_lists_every_pending_rule(fresh_db: Db) -> None:
    app_database(fresh_db, "0002")
    rows = add_incident_rows(fresh_db)
    findings = {f.rule: f for f in preflight.run(fresh_db.url)}
    assert findings["appointments_service_required"].first_ids == [rows["no_service"]]
    assert findings["appointments_one_live_per_customer_slot"].first_ids == [rows["dup"]]
    assert findings["appointments_one_live_per_calcom_booking_id"].first_ids == [rows["dup"]]
    assert findings["host_busy_time_no_overlap"].first_ids == [rows["host_clash"]]
    assert findings["appointments_status_known"].violations == 0
    assert all(f.error is None for f in findings.values())
    assert migrate.current_heads(fresh_db.url) == {"0002"}


def test_new_rows_only_mode(fresh_db: Db) -> None:
    app_database(fresh_db, "0002")
    rows = add_incident_rows(fresh_db)
    with env(CALSYNC_PREFLIGHT="new-rows-only"):
        migrate.upgrade(fresh_db.url, "heads")
    with fresh_db.connect() as conn:
        issues = {
            (str(r[0]), int(r[1]))  # type: ignore[call-overload]
            for r in conn.execute("SELECT rule, row_id FROM calsync.integrity_issues WHERE resolved_at IS NULL")
        }
        assert ("appointments_service_required", rows["no_service"]) in issues
        assert ("appointments_one_live_per_customer_slot", rows["dup"]) in issues
        assert ("host_busy_time_no_overlap", rows["host_clash"]) in issues
        valid = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'appointments_service_required'"
        ).fetchone()
        assert valid == (False,), "a constraint with listed violators stays NOT VALID"
        # the old violators are kept, and the rules refuse new violations
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO appointments (company_id, customer_id, starts_at, ends_at, status) "
                "SELECT company_id, customer_id, starts_at + interval '9 days', ends_at + interval '9 days', "
                "'confirmed' FROM appointments WHERE id = %s",
                [rows["no_service"]],
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status) "
                "SELECT company_id, customer_id, service_id, starts_at, ends_at, 'confirmed' FROM appointments "
                "WHERE id = %s",
                [rows["first"]],
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute(
                "INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, ends_at, status) "
                "SELECT company_id, customer_id + 2, service_id, staff_id, starts_at, ends_at, 'confirmed' "
                "FROM appointments WHERE id = %s",
                [rows["host_clash"] - 1],
            )


def _index_state(db: Db, name: str) -> tuple[object, ...] | None:
    with db.connect() as conn:
        return conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]).fetchone()


def test_failed_concurrent_build_leaves_no_invalid_index(fresh_db: Db) -> None:
    """A duplicate committed while the index is being built (after the pre-flight) makes the build fail."""
    app_database(fresh_db, "0008")
    blocker = fresh_db.connect()
    try:
        blocker.execute(
            "INSERT INTO appointments (company_id, customer_id, service_id, starts_at, ends_at, status) "
            "SELECT company_id, customer_id, service_id, starts_at, ends_at, status FROM appointments "
            "WHERE status = 'confirmed' ORDER BY id LIMIT 1"
        )
        threading.Timer(3.0, blocker.commit).start()  # the build waits for this transaction, then meets the duplicate
        with pytest.raises(sa.exc.IntegrityError) as err:
            migrate.upgrade(fresh_db.url, "0009")
        assert getattr(err.value.orig, "sqlstate", None) == "23505"
        assert _index_state(fresh_db, "appointments_one_live_per_customer_slot") is None, "INVALID index left behind"
        assert migrate.current_heads(fresh_db.url) == {"0008"}
    finally:
        blocker.close()


def test_lock_timeouts_are_retried(fresh_db: Db) -> None:
    """A long transaction makes the first attempts time out; the build is retried and succeeds."""
    app_database(fresh_db, "0008")
    blocker = fresh_db.connect()
    try:
        blocker.execute("UPDATE appointments SET sync_attempt_count = sync_attempt_count WHERE id = 1")
        threading.Timer(2.0, blocker.rollback).start()
        with env(CALSYNC_LOCK_TIMEOUT="200ms"):
            migrate.upgrade(fresh_db.url, "0010")
    finally:
        blocker.close()
    assert _index_state(fresh_db, "appointments_one_live_per_customer_slot") == (True,)
    assert migrate.current_heads(fresh_db.url) == {"0010"}


def test_hundred_concurrent_bookings_of_one_slot(db: Db) -> None:
    with db.connect() as conn:
        company = conn.execute("SELECT tests.make_company()").fetchone()[0]  # type: ignore[index]
        staff = conn.execute("SELECT tests.make_staff(%s, 'Lena Wagner', 4242)", [company]).fetchone()[0]  # type: ignore[index]
        service = conn.execute("SELECT tests.make_service(%s, 'Herrenhaarschnitt', 30)", [company]).fetchone()[0]  # type: ignore[index]
        customers = [
            conn.execute("SELECT tests.make_customer(%s, %s)", [company, f"Kunde {i}"]).fetchone()[0]  # type: ignore[index]
            for i in range(100)
        ]
        conn.commit()
    barrier = threading.Barrier(100)
    outcomes: list[str] = []
    lock = threading.Lock()

    def book(customer: int) -> None:
        with db.connect() as c:
            c.execute("SELECT 1")
            barrier.wait()
            try:
                c.execute(
                    "SELECT tests.make_appointment(%s, %s, %s, '2031-05-05 10:00+02')",
                    [customer, service, staff],
                )
                c.commit()
                result = "committed"
            except psycopg.errors.ExclusionViolation as e:
                result = f"refused {e.diag.constraint_name}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=book, args=(c,)) for c in customers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("committed") == 1
    assert outcomes.count("refused host_busy_time_no_overlap") == 99
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM appointments WHERE staff_id = %s", [staff]).fetchone() == (1,)


# revision 0012's table, interval by interval, against its definition
BUSY_0012_MISMATCH = """
(SELECT appointment_id, phase_id, staff_id, host_key, busy FROM calsync.host_busy_time
 EXCEPT ALL SELECT appointment_id, phase_id, staff_id, host_key, busy FROM calsync.appointment_busy_intervals)
UNION ALL
(SELECT appointment_id, phase_id, staff_id, host_key, busy FROM calsync.appointment_busy_intervals
 EXCEPT ALL SELECT appointment_id, phase_id, staff_id, host_key, busy FROM calsync.host_busy_time)
"""


class Writers:
    """Two app writers booking and moving throughout a migration: simple bookings and moves on one
    host, composite bookings (phases derived at commit) and moves on another. Nothing they write
    overlaps, so any error is the migration's."""

    def __init__(self, db: Db, year: int) -> None:
        self.db = db
        self.year = year
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.done = 0
        with db.connect() as conn:
            row = conn.execute(
                "SELECT (SELECT id FROM services WHERE NOT composite ORDER BY id LIMIT 1), "
                "(SELECT id FROM services WHERE composite AND jsonb_typeof(segments) = 'array' ORDER BY id LIMIT 1), "
                "(SELECT company_id FROM services WHERE NOT composite ORDER BY id LIMIT 1)"
            ).fetchone()
            assert row is not None and None not in row
            self.simple, self.composite, self.company = row
            staff = conn.execute(
                "SELECT id FROM staff WHERE company_id = %s AND calcom_user_id IS NOT NULL ORDER BY id LIMIT 2",
                [self.company],
            ).fetchall()
            self.customer = conn.execute(
                "SELECT min(id) FROM customers WHERE company_id = %s", [self.company]
            ).fetchone()[0]  # type: ignore[index]
        self.threads = [
            threading.Thread(target=self._run, args=(staff[0][0], self.simple, 0)),
            threading.Thread(target=self._run, args=(staff[1][0], self.composite, 1)),
        ]

    def _run(self, staff: object, service: object, lane: int) -> None:
        minutes = 30 if service == self.simple else 135
        booked: list[int] = []
        with self.db.connect() as conn:
            i = 0
            while not self.stop.is_set():
                i += 1
                start = dt.datetime(self.year + lane, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=3 * i)
                try:
                    if booked and i % 3 == 0:
                        conn.execute(
                            "UPDATE appointments SET starts_at = %s, ends_at = %s + (ends_at - starts_at) "
                            "WHERE id = %s",
                            [start, start, booked[i % len(booked)]],
                        )
                    else:
                        r = conn.execute(
                            "INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, "
                            "ends_at, status, is_composite) VALUES (%s, %s, %s, %s, %s, %s, 'confirmed', %s) "
                            "RETURNING id",
                            [self.company, self.customer, service, staff, start,
                             start + dt.timedelta(minutes=minutes), service == self.composite],
                        ).fetchone()  # fmt: skip
                        booked.append(int(r[0]))  # type: ignore[index, call-overload]
                    conn.commit()
                    self.done += 1
                except psycopg.Error as e:
                    conn.rollback()
                    self.errors.append(f"{type(e).__name__}: {e}")

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def _busy_mismatch(db: Db, query: str) -> list[tuple[object, ...]]:
    from tests.test_host_busy_time_model import MISMATCH

    with db.connect() as conn:
        return conn.execute(query or MISMATCH).fetchall()


def test_0019_with_writers_booking_throughout_and_back(fresh_db: Db) -> None:
    """Revision 0019 rebuilds calsync.host_busy_time (one row per appointment, bigint host) beside the old
    one while two writers book and move throughout, in batches small enough to interleave with them;
    the downgrade rebuilds revision 0012's table the same way. After each, the table equals its
    definition, the writers saw no error, and the rule still refuses a double booking."""
    app_database(fresh_db, "0018")
    with fresh_db.connect() as conn:
        before = conn.execute("SELECT count(*) FROM calsync.host_busy_time").fetchone()
    with env(CALSYNC_BUSY_BATCH_SIZE="5", CALSYNC_LOCK_TIMEOUT="200ms"), Writers(fresh_db, 2033) as writers:
        migrate.upgrade(fresh_db.url, "0019")
        during = writers.done
    assert writers.errors == [], writers.errors
    assert during > 0, "the writers wrote while the revision ran"
    assert migrate.current_heads(fresh_db.url) == {"0019"}
    assert _busy_mismatch(fresh_db, "") == []
    with fresh_db.connect() as conn:
        after = conn.execute("SELECT count(*) FROM calsync.host_busy_time").fetchone()
        assert after is not None and before is not None and 0 < after[0] < before[0]  # type: ignore[operator]
        staff, start, end = conn.execute(
            "SELECT a.staff_id, a.starts_at, a.ends_at FROM appointments a JOIN calsync.host_busy_time b "
            "ON b.appointment_id = a.id WHERE a.is_composite ORDER BY a.id DESC LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute(
                "INSERT INTO appointments (company_id, customer_id, service_id, staff_id, starts_at, ends_at, status) "
                "SELECT company_id, customer_id, service_id, staff_id, %s, %s, 'confirmed' FROM appointments "
                "WHERE staff_id = %s AND NOT is_composite LIMIT 1",
                [start, start + dt.timedelta(minutes=20), staff],
            )
        conn.rollback()
        assert end is not None
    with env(CALSYNC_BUSY_BATCH_SIZE="5", CALSYNC_LOCK_TIMEOUT="200ms"), Writers(fresh_db, 2040) as writers:
        migrate.downgrade(fresh_db.url, "0018")
    assert writers.errors == [], writers.errors
    assert migrate.current_heads(fresh_db.url) == {"0018"}
    assert _busy_mismatch(fresh_db, BUSY_0012_MISMATCH) == []
    migrate.upgrade(fresh_db.url, "heads")
    assert _busy_mismatch(fresh_db, "") == []


def test_hundred_concurrent_bookings_of_one_slot_simple_and_composite(db: Db) -> None:
    """Half the bookings are a Dauerwelle (its staff-required phases derived at commit), half a haircut
    over its first phase, all for one host at once: exactly one commits."""
    with db.connect() as conn:
        company = conn.execute("SELECT tests.make_company()").fetchone()[0]  # type: ignore[index]
        staff = conn.execute("SELECT tests.make_staff(%s, 'Lena Wagner', 4243)", [company]).fetchone()[0]  # type: ignore[index]
        cut = conn.execute("SELECT tests.make_service(%s, 'Herrenhaarschnitt', 30)", [company]).fetchone()[0]  # type: ignore[index]
        perm = conn.execute(
            "SELECT tests.make_service(%s, 'Dauerwelle', 135, tests.dauerwelle_segments())", [company]
        ).fetchone()[0]  # type: ignore[index]
        customers = [
            conn.execute("SELECT tests.make_customer(%s, %s)", [company, f"Kunde {i}"]).fetchone()[0]  # type: ignore[index]
            for i in range(100)
        ]
        conn.commit()
    barrier = threading.Barrier(100)
    outcomes: list[str] = []
    lock = threading.Lock()

    def book(i: int, customer: int) -> None:
        with db.connect() as c:
            c.execute("SELECT 1")
            barrier.wait()
            try:
                c.execute(
                    "SELECT tests.make_appointment(%s, %s, %s, '2031-05-06 10:00+02')",
                    [customer, perm if i % 2 else cut, staff],
                )
                c.commit()
                result = "committed"
            except psycopg.errors.ExclusionViolation as e:
                result = f"refused {e.diag.constraint_name}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=book, args=(i, c)) for i, c in enumerate(customers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("committed") == 1, outcomes
    assert outcomes.count("refused host_busy_time_no_overlap") == 99
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM appointments WHERE staff_id = %s", [staff]).fetchone() == (1,)
    assert _busy_mismatch(db, "") == []
