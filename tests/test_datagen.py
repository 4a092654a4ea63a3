"""The demo/benchmark data generator: deterministic, realistic, and clean of rule violations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg
import pytest

from tests.conftest import Db
from worker.devtools import datagen
from worker.ops import migrate

ANCHOR = dt.date(2026, 11, 25)
PARAMS = datagen.Params(salons=2, appointments_per_salon=700, anchor=ANCHOR)


def _fingerprint(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[object, ...]:
    row = conn.execute(
        """SELECT (SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM appointments a),
                  (SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM customers c),
                  (SELECT md5(string_agg((p.appointment_id, p.sequence_order, p.start_time)::text, '|'
                                         ORDER BY p.appointment_id, p.sequence_order))
                   FROM appointment_phases p)"""
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def generated(fresh_db: Db) -> Db:
    """Data as the app has it: generated on revision 0001."""
    migrate.upgrade(fresh_db.url, "0001")
    with fresh_db.connect() as conn:
        datagen.generate(conn, PARAMS)
    return fresh_db


def test_same_parameters_same_data(db_factory: Callable[[], Db]) -> None:
    """Two generations into two databases give identical rows."""
    prints = []
    for _ in range(2):
        with db_factory().connect() as conn:
            datagen.generate(conn, PARAMS)
            prints.append(_fingerprint(conn))
    assert prints[0] == prints[1]


def test_generates_into_a_database_with_every_rule(db: Db) -> None:
    """At head the rules' triggers accept the generated data and repair what they should."""
    with db.connect() as conn:
        datagen.generate(conn, PARAMS)
        summary = dict(datagen.summary(conn))
    assert summary["appointments"] == 1400
    assert summary["customers with anonymous_ phone and no email"] == 0  # placeholders filled


def test_shape_of_the_data(generated: Db) -> None:
    with generated.connect() as conn:
        summary = dict(datagen.summary(conn))
        assert summary["appointments"] == 1400
        assert summary["companies"] == 2
        assert summary["people with two staff rows (one Cal.com user)"] == 2
        assert summary["customers with anonymous_ phone and no email"] > 0
        assert 0 < summary["composite appointments without phases"] < summary["composite appointments"]
        past = conn.execute("SELECT count(*) FROM appointments WHERE starts_at < %s", [ANCHOR]).fetchone()
        assert past is not None and 0 < int(past[0]) < 1400  # type: ignore[call-overload]
        # the Dauerwelle in the app's live shape: 6 phases, 4 of them need staff, 135 min in all
        row = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE p.staff_required),
                      max(p.start_offset_minutes + p.duration_minutes)
               FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
               JOIN services s ON s.id = a.service_id
               WHERE s.name = 'Dauerwelle' AND a.id = (SELECT min(a2.id) FROM appointments a2
                     JOIN services s2 ON s2.id = a2.service_id WHERE s2.name = 'Dauerwelle')"""
        ).fetchone()
        assert row == (6, 4, 135)
        anonymous = conn.execute(
            "SELECT phone FROM customers WHERE phone LIKE 'anonymous%' ORDER BY id LIMIT 1"
        ).fetchone()
        assert anonymous is not None
        assert str(anonymous[0]).count("_") == 2 and len(str(anonymous[0]).rsplit("_", 1)[1]) == 8
        legacy = conn.execute(
            "SELECT segments->0 ? 'gap_after' FROM services WHERE name = 'Ansatz + Längenausgleich' LIMIT 1"
        ).fetchone()
        assert legacy == (True,)


def test_no_rule_is_broken(generated: Db) -> None:
    """Benchmarks apply the integrity rules to generated data; its pre-flight must find nothing."""
    with generated.connect() as conn:
        dup_slots = conn.execute(
            """SELECT count(*) FROM (SELECT 1 FROM appointments WHERE status NOT IN ('cancelled', 'no_show')
               GROUP BY customer_id, starts_at, service_id HAVING count(*) > 1) d"""
        ).fetchone()
        host_overlaps = conn.execute(
            """SELECT count(*) FROM appointments a JOIN staff sa ON sa.id = a.staff_id
               JOIN appointments b ON b.id > a.id JOIN staff sb ON sb.id = b.staff_id
               WHERE sa.calcom_user_id = sb.calcom_user_id
                 AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
                 AND a.status NOT IN ('cancelled', 'no_show') AND b.status NOT IN ('cancelled', 'no_show')"""
        ).fetchone()
        bad_times = conn.execute("SELECT count(*) FROM appointments WHERE ends_at <= starts_at").fetchone()
    assert dup_slots == (0,)
    assert host_overlaps == (0,)
    assert bad_times == (0,)


def test_refuses_a_database_that_has_data(generated: Db) -> None:
    with generated.connect() as conn, pytest.raises(datagen.NotEmpty):
        datagen.generate(conn, PARAMS)


def test_rejects_impossible_parameters() -> None:
    with pytest.raises(ValueError, match="2555"):
        datagen.Params(appointments_per_salon=3000).sql_params()
