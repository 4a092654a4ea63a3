"""The migration chain: up, down and up again; offline SQL; revision 0001 as the app has it today."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from tests.conftest import Db
from worker.ops import head, migrate
from worker.resources import MIGRATIONS_DIR

BASE_TABLES = {
    "companies",
    "branches",
    "customers",
    "staff",
    "services",
    "calcom_event_map",
    "appointments",
    "appointment_phases",
}


def public_tables(db: Db) -> set[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_single_line_of_heads_is_known() -> None:
    heads = migrate.code_heads()
    assert heads, "the migration chain has no head"
    for rev in heads:
        assert migrate.script().get_revision(rev) is not None


def test_the_head_check_without_alembic_agrees_with_alembic(tmp_path: Path) -> None:
    """worker/ops/head.py reads the revision files itself (the worker's start-up skips importing Alembic)."""
    assert head.code_heads() == migrate.code_heads()
    # a second head (a revision on another branch) is seen as Alembic would see it
    for f in (MIGRATIONS_DIR / "versions").glob("*.py"):
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "9999_branch.py").write_text('revision = "9999"\ndown_revision = "0001"\n')
    assert head.code_heads(tmp_path) == migrate.code_heads() | {"9999"}


def test_upgrade_downgrade_upgrade(fresh_db: Db) -> None:
    with pytest.raises(head.NotAtHead, match="database is at revision none"):
        head.require_head(fresh_db.url)
    migrate.upgrade(fresh_db.url, "heads")
    assert public_tables(fresh_db) >= BASE_TABLES
    assert migrate.current_heads(fresh_db.url) == migrate.code_heads() == head.database_heads(fresh_db.url)
    head.require_head(fresh_db.url)

    migrate.downgrade(fresh_db.url, "base")
    assert public_tables(fresh_db) == set()
    assert migrate.current_heads(fresh_db.url) == set() == head.database_heads(fresh_db.url)

    migrate.upgrade(fresh_db.url, "heads")
    assert public_tables(fresh_db) >= BASE_TABLES
    assert migrate.current_heads(fresh_db.url) == migrate.code_heads()


def test_revision_0001_reproduces_the_apps_weaknesses(fresh_db: Db) -> None:
    migrate.upgrade(fresh_db.url, "0001")
    with fresh_db.connect() as conn:
        (length,) = conn.execute(  # type: ignore[misc]
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 'appointments' AND column_name = 'sync_error_message'"
        ).fetchone()
        (nullable,) = conn.execute(  # type: ignore[misc]
            "SELECT is_nullable FROM information_schema.columns "
            "WHERE table_name = 'appointments' AND column_name = 'service_id'"
        ).fetchone()
        uniques = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'appointments' AND indexdef LIKE 'CREATE UNIQUE%'"
        ).fetchall()
    assert length == 255
    assert nullable == "YES"
    # only the primary key and the app's calcom_v2_booking_id unique: nothing guards a slot
    assert len(uniques) == 2
    assert not any("customer_id" in str(u[0]) for u in uniques)


def test_offline_sql_is_rendered() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        migrate.upgrade("postgresql://offline/calsync", "heads", sql=True)
    sql = out.getvalue()
    assert "CREATE TABLE appointments" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    assert sql.count("BEGIN;") >= 1 and sql.rstrip().endswith("COMMIT;")


@pytest.mark.parametrize("target", ["0001"])
def test_downgrade_of_each_revision_removes_what_it_added(fresh_db: Db, target: str) -> None:
    migrate.upgrade(fresh_db.url, target)
    before = public_tables(fresh_db)
    migrate.downgrade(fresh_db.url, "-1")
    migrate.upgrade(fresh_db.url, target)
    assert public_tables(fresh_db) == before
