"""`calsync adopt`: stamp 0001 on an existing app database, refuse when its columns don't match."""

from __future__ import annotations

import pytest

from tests.conftest import Db
from worker.ops import adopt, migrate


def _app_database(db: Db) -> None:
    """A database that has the app's tables but was never managed by Alembic."""
    migrate.upgrade(db.url, "0001")
    with db.connect() as conn:
        conn.execute("DROP TABLE alembic_version")
        conn.execute("ALTER TABLE appointments ADD COLUMN call_id bigint")  # extra app columns are fine
        conn.commit()


def test_adopt_stamps_a_matching_database(fresh_db: Db) -> None:
    _app_database(fresh_db)
    assert adopt.check(fresh_db.url) == []
    adopt.adopt(fresh_db.url)
    assert migrate.current_heads(fresh_db.url) == {"0001"}


def test_adopt_refuses_missing_and_incompatible_columns(fresh_db: Db) -> None:
    _app_database(fresh_db)
    with fresh_db.connect() as conn:
        conn.execute("ALTER TABLE appointments DROP COLUMN idempotency_key")
        conn.execute("ALTER TABLE appointments ALTER COLUMN starts_at TYPE timestamp")
        conn.execute("DROP TABLE calcom_event_map")
        conn.commit()
    problems = {str(p) for p in adopt.check(fresh_db.url)}
    assert problems == {
        "appointments.idempotency_key: column is missing (expected text)",
        "appointments.starts_at: type timestamp without time zone is not compatible with timestamptz",
        "calcom_event_map: table is missing from schema public",
    }
    with pytest.raises(adopt.AdoptRefused, match="3 differences"):
        adopt.adopt(fresh_db.url)
    assert migrate.current_heads(fresh_db.url) == set()


def test_adopt_refuses_a_managed_database(db: Db) -> None:
    with pytest.raises(adopt.AdoptRefused, match="already managed"):
        adopt.adopt(db.url)
