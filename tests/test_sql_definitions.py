"""sql/ is the one current definition of every function, trigger and view; migrations hold frozen copies.

A database migrated to head (DB-A) and the same database with every sql/ file applied on top (DB-B) must
have identical catalogs, and every calsync function, trigger and view must have its file in sql/.

A definition lives in the file named after it (issue 9):

- ``sql/functions/<name>.sql`` defines function ``calsync.<name>`` and nothing else (several overloads of the one
  name are one definition); ``sql/functions/<schema>/<name>.sql`` defines ``<schema>.<name>`` (the schemas other
  than calsync, today ``remediation``). ``sql/views/`` likewise for views.
- A view may be one definition split for privileges: ``sql/views/remediation/<x>.sql`` holds the query as view
  ``calsync.remediation_<x>``, function ``remediation.<x>_without_jit()`` that reads it planned with jit off
  (SECURITY DEFINER), and view ``remediation.<x>`` over that function; the file's head says why.
- ``sql/triggers/<table>__<what>.sql`` holds the triggers on ``<table>`` of one rule (one trigger, or its
  per-event variants), each named ``<table>_…``, and may hold the trigger functions those triggers execute; no
  other function and no view.

``NOT_YET_SPLIT`` lists the files another change is rewriting; the rule is checked on them once they leave the
list (a file that is gone, or that keeps the rule, fails the test until it is taken off). The frozen migrations
(``migrations/versions/*.sql``) keep the ``-- from:`` lines of the files as they were when they landed: those
name files that have since been split, and are never read again (scripts/freeze.py runs only on revisions that
have not landed).
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
# the rule's own patterns: any CREATE, with or without OR REPLACE
_ANY_FUNCTION = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\s+(\w+\.\w+)", re.I | re.M)
_ANY_VIEW = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?VIEW\s+(\w+\.\w+)", re.I | re.M)
_ANY_TRIGGER = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+(\w+)\s.*?\bON\s+(?:\w+\.)?(\w+)", re.I | re.M | re.S
)
_EXECUTES = re.compile(r"EXECUTE\s+(?:FUNCTION|PROCEDURE)\s+(\w+\.\w+)\s*\(", re.IGNORECASE)
NOT_YET_SPLIT: set[str] = set()  # every file keeps the rule now


def definition_files() -> list[Path]:
    return [p for d in DEFINITION_DIRS for p in sorted((SQL_DIR / d).rglob("*.sql"))]


def defined(pattern: re.Pattern[str]) -> set[str]:
    return {m for p in definition_files() for m in pattern.findall(p.read_text())}


def misplaced(path: Path) -> list[str]:
    """What ``path`` (a file of sql/functions, sql/views or sql/triggers) defines that is not its own."""
    rel = path.relative_to(SQL_DIR)
    kind, *folders = rel.parent.parts
    text = path.read_text()
    functions, views = set(_ANY_FUNCTION.findall(text)), set(_ANY_VIEW.findall(text))
    triggers = _ANY_TRIGGER.findall(text)
    if kind == "triggers":
        table = path.stem.split("__")[0]
        wrong = [f"trigger {t} is on {on}, not {table}" for t, on in triggers if on != table]
        wrong += [f"trigger {t} is not named {table}_…" for t, _ in triggers if not t.startswith(table + "_")]
        wrong += [
            f"function {f} is not executed by its triggers" for f in sorted(functions - set(_EXECUTES.findall(text)))
        ]
        return wrong + [f"view {v}" for v in sorted(views)] + (["no trigger"] if not triggers else [])
    if len(folders) > 1 or folders == ["calsync"]:
        return [f"{rel.parent} is not sql/{kind}/ or sql/{kind}/<schema other than calsync>/"]
    schema, name = (folders or ["calsync"])[0], path.stem
    own = f"{schema}.{name}"
    wrong = [f"trigger {t}" for t, _ in triggers]
    if kind == "functions":
        return (
            wrong
            + [f"function {f}" for f in sorted(functions - {own})]
            + [f"view {v}" for v in sorted(views)]
            + ([f"no function {own}"] if own not in functions else [])
        )
    family_functions, family_views = {f"{schema}.{name}_without_jit"}, {own, f"calsync.{schema}_{name}"}
    return (
        wrong
        + [f"function {f}" for f in sorted(functions - family_functions)]
        + [f"view {v}" for v in sorted(views - family_views)]
        + ([f"no view {own}"] if own not in views else [])
    )


def test_each_function_and_view_lives_in_the_file_named_after_it() -> None:
    files = [p for d in ("functions", "triggers", "views") for p in sorted((SQL_DIR / d).rglob("*.sql"))]
    wrong = {
        p.relative_to(SQL_DIR).as_posix(): w
        for p in files
        if p.relative_to(SQL_DIR).as_posix() not in NOT_YET_SPLIT and (w := misplaced(p))
    }
    assert not wrong, "definitions outside the file named after them (see this test's docstring):\n" + "\n".join(
        f"sql/{f}: {', '.join(w)}" for f, w in sorted(wrong.items())
    )
    for name in sorted(NOT_YET_SPLIT):
        path = SQL_DIR / name
        assert path.is_file() and misplaced(path), f"sql/{name} is gone or keeps the rule: take it off NOT_YET_SPLIT"


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


# SQL functions that PostgreSQL plans again in every transaction (a SET clause or SECURITY DEFINER: never inlined)
# and that PL/pgSQL may still call, each with why that costs nothing that matters: called once per operator's
# command or per worker batch, not per row, delivery or booking.
PLANNED_PER_CALL_ALLOWED = {
    "calsync.caller_is_admin": "only when a caller passes its own time (tests, admin tools), never on the hot path",
    "calsync.worker_limit": "once per worker claim (a batch)",
    "calsync.sync_outcome": "inside finish_sync_events' one statement per worker batch: planned once per call",
    "calsync.register_listener": "once per worker session",
    "remediation.blocking_cause": "the runbook's requeue step and the remediation views, per operator command",
    "remediation.reconcile_compare": "once per page of a reconciliation run",
}


def test_no_function_called_from_plpgsql_is_planned_again_on_every_call(db: Db) -> None:
    """A SQL function with a SET clause, or SECURITY DEFINER, is never inlined: PostgreSQL 15 plans its body again
    in every transaction, on every call from a trigger's PERFORM (remediation.diagnose_failures: 14 ms of planning
    for under 2 ms of work, on every UPDATE that flagged an appointment, until revision 0027). PL/pgSQL keeps its
    plans for the session. So a function that PL/pgSQL code calls (triggers, the receiver's and the worker's
    functions) is PL/pgSQL, or an inlinable SQL function, or listed above with its reason."""
    with db.connect() as conn:
        planned_per_call = {
            str(r[0])
            for r in conn.execute(
                "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "JOIN pg_language l ON l.oid = p.prolang WHERE n.nspname IN ('calsync', 'remediation') "
                "AND l.lanname = 'sql' AND (p.proconfig IS NOT NULL OR p.prosecdef)"
            )
        }
        plpgsql = conn.execute(
            "SELECT n.nspname || '.' || p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang "
            "WHERE n.nspname IN ('calsync', 'remediation') AND l.lanname = 'plpgsql'"
        ).fetchall()
    assert "calsync.caller_is_admin" in planned_per_call, "the query no longer sees SQL functions with SET clauses"
    called = {
        (f, str(caller))
        for caller, src in plpgsql
        for f in planned_per_call
        if re.search(rf"\b{re.escape(f)}\s*\(", str(src))
    }
    unlisted = sorted(f"{f} (called by {caller})" for f, caller in called if f not in PLANNED_PER_CALL_ALLOWED)
    assert not unlisted, "planned again on every call, from PL/pgSQL: make it PL/pgSQL or inlinable: " + ", ".join(
        unlisted
    )
    stale = sorted(set(PLANNED_PER_CALL_ALLOWED) - {f for f, _ in called})
    assert not stale, f"PLANNED_PER_CALL_ALLOWED lists functions no PL/pgSQL code calls any more: {stale}"
