"""sql/ is the one current definition of every function, trigger and view; migrations hold frozen copies.

A database migrated to head (DB-A) and the same database with every sql/ file applied on top (DB-B) must
have identical catalogs, and every calsync function, trigger and view must have its file in sql/.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Db
from tests.schema_dump import dump
from worker.resources import SQL_DIR

DEFINITION_DIRS = ("functions", "triggers", "views", "grants")
_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION\s+(\w+\.\w+)\s*\(", re.IGNORECASE)
_TRIGGER = re.compile(r"CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER\s+(\w+)", re.IGNORECASE)
_VIEW = re.compile(r"CREATE OR REPLACE VIEW\s+(\w+\.\w+)", re.IGNORECASE)


def definition_files() -> list[Path]:
    return [p for d in DEFINITION_DIRS for p in sorted((SQL_DIR / d).rglob("*.sql"))]


def defined(pattern: re.Pattern[str]) -> set[str]:
    return {m for p in definition_files() for m in pattern.findall(p.read_text())}


def test_applying_sql_dir_on_head_changes_nothing(db: Db, db_factory: Callable[[], Db]) -> None:
    other = db_factory()
    with other.connect() as conn:
        for path in definition_files():
            conn.execute(path.read_text())  # type: ignore[arg-type]
        conn.commit()
    head, applied = dump(db.url), dump(other.url)
    diff = "\n".join(difflib.unified_diff(head.splitlines(), applied.splitlines(), "head", "head+sql/", lineterm=""))
    assert not diff, "sql/ and the migrations disagree (a change in sql/ needs a revision that freezes it):\n" + diff


def test_every_calsync_definition_has_its_file(db: Db) -> None:
    with db.connect() as conn:
        functions = {
            str(r[0])
            for r in conn.execute(
                "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname IN ('calsync', 'remediation')"
            )
        }
        triggers = {
            str(r[0])
            for r in conn.execute(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE NOT t.tgisinternal "
                "AND n.nspname IN ('calsync', 'remediation')"
            )
        }
        views = {
            str(r[0])
            for r in conn.execute(
                "SELECT schemaname || '.' || viewname FROM pg_views WHERE schemaname IN ('calsync', 'remediation')"
            )
        }
    assert functions == defined(_FUNCTION)
    assert triggers == defined(_TRIGGER)
    assert views == defined(_VIEW)
