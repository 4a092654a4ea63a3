"""The pgTAP runner itself must be able to fail: a failing assertion, a bad plan, an SQL error, no plan."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Db
from tests.pgtap_runner import TapResult, run_file

SELFTEST = Path(__file__).parent / "pgtap_selftest"


def _run(name: str, db: Db) -> TapResult:
    return run_file(SELFTEST / name, host=db.host, port=db.port, user=db.user, dbname=db.dbname)


def test_passing_file_passes_and_is_rolled_back(db: Db) -> None:
    result = _run("passes.sql", db)
    assert result.ok, result.report()
    assert (result.planned, result.passed) == (2, [1, 2])
    with db.connect() as conn:
        assert conn.execute("SELECT to_regclass('must_not_survive')").fetchone() == (None,)


def test_failed_assertion_shows_description_and_have_want(db: Db) -> None:
    result = _run("fails.sql", db)
    assert not result.ok
    assert result.failed == [2]
    report = result.report()
    assert "the answer is 42" in report
    assert "have: 41" in report and "want: 42" in report


def test_bad_plan_fails(db: Db) -> None:
    result = _run("bad_plan.sql", db)
    assert not result.ok
    assert "bad plan: planned 3, ran 1" in result.problems


def test_sql_error_fails_with_file_and_line(db: Db) -> None:
    result = _run("sql_error.sql", db)
    assert not result.ok
    assert result.returncode == 3
    assert "sql_error.sql:3" in result.errors and "no_such_column" in result.errors


def test_missing_plan_fails(db: Db) -> None:
    result = _run("no_plan.sql", db)
    assert not result.ok
    assert any("no plan" in p for p in result.problems)
