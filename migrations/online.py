"""Deploy-safe building blocks for revisions that run against large, live tables.

Used by every revision after 0001. The behaviour of a helper never changes once a revision that uses it
has landed (revisions are frozen, and so is what they call); a changed behaviour gets a new helper.

- ``begin_revision()``: sets ``lock_timeout`` and ``statement_timeout`` for the revision's transaction.
- ``ddl(*statements)``: the revision's lock-taking statements as one unit inside a savepoint; on a lock
  timeout (SQLSTATE 55P03) the unit is undone, releasing every lock it took, then retried with
  exponential backoff and jitter, a bounded number of times. Offline it is just the statements.
- ``concurrent_index(name, sql)``: ``CREATE [UNIQUE] INDEX CONCURRENTLY`` outside the transaction; a
  failed build never leaves an INVALID index behind (it is dropped, then retried or re-raised).
- ``batches(call)``: a backfill in short transactions of its own, calling a SQL function
  ``f(after_id bigint, batch int) RETURNS bigint`` until it returns NULL. Offline it renders a DO loop.
- ``preflight(revision, checks)``: finds rows that break a rule before the rule is added; stops with a
  readable report, or (``CALSYNC_PREFLIGHT=new-rows-only``) records them in ``calsync.integrity_issues``.

Settings (environment, or ``alembic -x name=value``): ``CALSYNC_LOCK_TIMEOUT`` (default 500ms: a writer
queued behind a DDL lock request waits at most this long), ``CALSYNC_STATEMENT_TIMEOUT`` (30s, for DDL),
``CALSYNC_LOCK_RETRIES`` (30), ``CALSYNC_BATCH_SIZE`` (5000), ``CALSYNC_PREFLIGHT`` (``refuse`` |
``new-rows-only``).
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

PREFLIGHT_SQLSTATE = "CS001"


def setting(name: str, default: str) -> str:
    xargs = context.get_x_argument(as_dictionary=True)
    key = name.lower().removeprefix("calsync_")
    return str(xargs.get(key) or os.environ.get(name) or default)


def lock_timeout() -> str:
    return setting("CALSYNC_LOCK_TIMEOUT", "500ms")


def statement_timeout() -> str:
    return setting("CALSYNC_STATEMENT_TIMEOUT", "30s")


def offline() -> bool:
    return context.is_offline_mode()


def say(message: str) -> None:
    if not offline():
        print(f"  calsync: {message}", file=sys.stderr, flush=True)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None)


_BLOCK_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


def load_frozen(revision_file: str) -> dict[str, str]:
    """The named SQL blocks (``-- name: x``) of a revision's frozen sibling file (``<revision>.sql``).

    Revisions carry what they need: this parser is the migrations' own, so nothing under ``migrations/``
    imports the application (``worker/``), whose code is not frozen."""
    parts = _BLOCK_NAME.split(Path(revision_file).with_suffix(".sql").read_text())
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"{revision_file}: SQL block {name!r} is defined twice")
        blocks[name] = body.strip().removesuffix(";")
    return blocks


def begin_revision() -> None:
    op.execute(f"SET LOCAL lock_timeout = '{lock_timeout()}'")
    op.execute(f"SET LOCAL statement_timeout = '{statement_timeout()}'")


def ddl(*statements: str, attempts: int | None = None) -> None:
    """Run lock-taking statements as one unit; on a lock timeout (55P03) undo the whole unit, so that no
    lock is held while waiting, back off (exponential, jittered) and retry, a bounded number of times.

    Call it once per revision with every statement that takes a table lock, after anything slow (the
    pre-flight) and before the steps that leave the transaction (CONCURRENTLY builds, backfills): the
    unit's locks are then held only for the milliseconds its catalog changes take, up to the commit.
    """
    if offline():
        for sql in statements:
            op.execute(sql)
        return
    tries = attempts or int(setting("CALSYNC_LOCK_RETRIES", "30"))
    conn = op.get_bind()
    for attempt in range(1, tries + 1):
        sp = conn.begin_nested()
        try:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout()}'")
            for sql in statements:
                conn.exec_driver_sql(sql.replace("%", "%%"))  # no parameters: a % is literal
            sp.commit()
            return
        except sa.exc.DBAPIError as exc:
            sp.rollback()
            if _sqlstate(exc) != "55P03":
                raise
            if attempt == tries:
                raise RuntimeError(
                    f"gave up after {tries} lock timeouts ({lock_timeout()} each): a long transaction holds "
                    "a conflicting lock; see pg_stat_activity / pg_locks, then rerun `calsync migrate`"
                ) from exc
            delay = min(10.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2)
            first = statements[0].strip().split(chr(10))[0][:80]
            say(f"lock timeout (attempt {attempt}/{tries}), retrying in {delay:.2f}s: {first}")
            time.sleep(delay)


def concurrent_index(name: str, create_sql: str, *, attempts: int | None = None) -> None:
    """CREATE INDEX CONCURRENTLY outside the revision's transaction, leaving no INVALID index on failure.

    The build is retried on lock timeouts. A failed build leaves an INVALID index, which PostgreSQL still
    maintains (and, if unique, partly enforces), so it is always dropped again: with DROP INDEX
    CONCURRENTLY and no lock timeout, because that only takes SHARE UPDATE EXCLUSIVE (writers go on) and
    may have to wait for the very transaction that made the build fail.
    """
    drop = f"DROP INDEX CONCURRENTLY IF EXISTS {name}"
    with op.get_context().autocommit_block():
        if offline():
            op.execute(f"SET lock_timeout = '{lock_timeout()}'")
            op.execute("SET statement_timeout = 0")
            op.execute(create_sql)
            return
        conn = op.get_bind()

        def drop_leftover() -> None:
            say(f"dropping the INVALID index {name} left by a failed build (waits for open transactions)")
            conn.exec_driver_sql("SET lock_timeout = 0")
            conn.exec_driver_sql(drop)
            conn.exec_driver_sql(f"SET lock_timeout = '{lock_timeout()}'")

        conn.exec_driver_sql(f"SET lock_timeout = '{lock_timeout()}'")
        conn.exec_driver_sql("SET statement_timeout = 0")
        tries = attempts or int(setting("CALSYNC_LOCK_RETRIES", "30"))
        try:
            for attempt in range(1, tries + 1):
                invalid = conn.exec_driver_sql(
                    "SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%(n)s)",
                    {"n": name},
                ).scalar()
                if invalid:
                    drop_leftover()
                try:
                    conn.exec_driver_sql(create_sql)
                    return
                except sa.exc.DBAPIError as exc:
                    drop_leftover()
                    if _sqlstate(exc) != "55P03" or attempt == tries:
                        raise
                    delay = min(10.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2)
                    say(f"lock timeout building {name} (attempt {attempt}/{tries}), retrying in {delay:.2f}s")
                    time.sleep(delay)
        finally:
            conn.exec_driver_sql("RESET lock_timeout")
            conn.exec_driver_sql("RESET statement_timeout")


def drop_index_concurrently(name: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(f"SET lock_timeout = '{lock_timeout()}'")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute("RESET lock_timeout")


def batches(function: str, *, what: str, size: int | None = None) -> None:
    """Backfill in short transactions: call ``function(after_id, batch_size)`` until it returns NULL.

    ``size`` (else ``CALSYNC_BATCH_SIZE``, default 5000) bounds how long one batch holds its row locks.
    """
    size = size or int(setting("CALSYNC_BATCH_SIZE", "5000"))
    with op.get_context().autocommit_block():
        if offline():
            op.execute(
                "DO $batch$ DECLARE last_id bigint := 0; BEGIN\n"
                f"  LOOP last_id := {function}(last_id, {size}); EXIT WHEN last_id IS NULL; COMMIT; END LOOP;\n"
                "END $batch$"
            )
            return
        conn = op.get_bind()
        conn.exec_driver_sql(f"SET lock_timeout = '{lock_timeout()}'")
        conn.exec_driver_sql("SET statement_timeout = 0")
        last: int | None = 0
        done, started, lock_waits = 0, time.monotonic(), 0
        try:
            while last is not None:
                try:
                    last = conn.exec_driver_sql(f"SELECT {function}(%(a)s, %(b)s)", {"a": last, "b": size}).scalar()
                except sa.exc.DBAPIError as exc:
                    if _sqlstate(exc) != "55P03" or lock_waits > 100:
                        raise
                    lock_waits += 1
                    time.sleep(min(5.0, 0.05 * 2 ** min(lock_waits, 6)))
                    continue
                if last is None:
                    break
                done += 1
                if done % 20 == 0:
                    say(f"{what}: {done} batches, up to id {last}, {time.monotonic() - started:.1f}s")
        finally:
            conn.exec_driver_sql("RESET lock_timeout")
            conn.exec_driver_sql("RESET statement_timeout")
        say(f"{what}: done in {done} batches, {time.monotonic() - started:.1f}s")


@dataclass(frozen=True)
class Check:
    """A pre-flight check: ``violators`` returns ``(id bigint, detail text)`` for each row breaking ``rule``."""

    rule: str
    table: str
    description: str
    violators: str
    fix: str


def preflight_mode() -> str:
    mode = setting("CALSYNC_PREFLIGHT", "refuse")
    if mode not in ("refuse", "new-rows-only"):
        raise SystemExit(f"CALSYNC_PREFLIGHT must be 'refuse' or 'new-rows-only', not {mode!r}")
    return mode


def preflight(revision: str, checks: Sequence[Check]) -> dict[str, int]:
    """Run each check inside the database (``calsync.preflight``), online and offline alike.

    Returns the number of violators per rule (online; offline the counts are unknown and reported as 0).
    In refuse mode a violator stops the revision with SQLSTATE CS001, so a returned count is only ever
    non-zero in new-rows-only mode.
    """
    mode = preflight_mode()
    counts: dict[str, int] = {}
    for c in checks:
        stmt = sa.text(
            "SELECT calsync.preflight(:revision, :rule, :tbl, :description, :violators, :fix, :mode)"
        ).bindparams(
            revision=revision,
            rule=c.rule,
            tbl=c.table,
            description=c.description,
            violators=c.violators,
            fix=c.fix,
            mode=mode,
        )
        if offline():
            op.execute(stmt)
            counts[c.rule] = 0
        else:
            counts[c.rule] = int(op.get_bind().execute(stmt).scalar() or 0)
    return counts


def validate_unless_open_issues(table: str, constraint: str) -> None:
    """VALIDATE a NOT VALID constraint in its own transaction, unless rows breaking it were listed as
    known issues by a new-rows-only pre-flight (then the constraint keeps covering new rows only)."""
    with op.get_context().autocommit_block():
        op.execute("SET statement_timeout = 0")
        op.execute(
            f"""DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM calsync.integrity_issues
               WHERE rule = '{constraint}' AND table_name = '{table}' AND resolved_at IS NULL) THEN
        RAISE WARNING '{constraint} stays NOT VALID (new rows only): rows listed in calsync.integrity_issues break it';
    ELSE
        ALTER TABLE {table} VALIDATE CONSTRAINT {constraint};
    END IF;
END
$$"""
        )
        op.execute("RESET statement_timeout")


def exempt_ids(rule: str) -> list[int]:
    """Ids a new-rows-only pre-flight listed for ``rule`` (online only)."""
    if offline():
        return []
    rows = op.get_bind().exec_driver_sql(
        "SELECT row_id FROM calsync.integrity_issues WHERE rule = %(r)s AND resolved_at IS NULL ORDER BY row_id",
        {"r": rule},
    )
    return [int(r[0]) for r in rows]


@dataclass(frozen=True)
class UniqueRule:
    """A unique rule: ``columns`` unique among the rows matching ``where`` (None: all rows).

    Its pre-flight lists every row beyond the first of its group, ordered by ``keep_first``: the first
    is the row a fix would keep.
    """

    name: str
    table: str
    columns: str
    where: str | None
    description: str
    fix: str
    keep_first: str = "id"

    @property
    def check(self) -> Check:
        return Check(
            rule=self.name,
            table=self.table,
            description=self.description,
            violators=(
                f"SELECT id, format('same ({self.columns}) as {self.table} #%s', first_id) AS detail FROM ("
                f"SELECT id, first_value(id) OVER w AS first_id, row_number() OVER w AS rn FROM {self.table} "
                f"WHERE {self.where or 'true'} WINDOW w AS (PARTITION BY {self.columns} ORDER BY {self.keep_first})"
                ") AS d WHERE rn > 1"
            ),
            fix=self.fix,
        )


def unique_rule(revision: str, rule: UniqueRule) -> None:
    """Pre-flight, then a unique index built CONCURRENTLY.

    In new-rows-only mode the listed rows are left out of the index (``id NOT IN (…)``), so the rule
    covers every other row, new ones included. With ``where`` set the index is partial, which PostgreSQL
    cannot attach as a table constraint, so the index is the rule and its name is what a violation
    reports. Without ``where`` (and without exempted rows) the index is attached as a UNIQUE constraint of
    the same name with ADD CONSTRAINT … USING INDEX (brief lock, retried).
    """
    counts = preflight(revision, [rule.check])
    predicates = [rule.where] if rule.where else []
    if counts.get(rule.name):
        predicates.append(f"id NOT IN ({', '.join(str(i) for i in exempt_ids(rule.name))})")
    predicate = f" WHERE {' AND '.join(predicates)}" if predicates else ""
    concurrent_index(
        rule.name,
        f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {rule.name} ON {rule.table} ({rule.columns}){predicate}",
    )
    if not predicates:
        ddl(f"ALTER TABLE {rule.table} ADD CONSTRAINT {rule.name} UNIQUE USING INDEX {rule.name}")


def drop_unique_rule(table: str, name: str) -> None:
    """Downgrade of unique_rule: drop the constraint (if attached) or the index, without a long lock."""
    ddl(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
    drop_index_concurrently(name)


def resolve_issues_of(rules: Sequence[str], revision: str) -> None:
    """On downgrade: issues listed for rules that no longer exist are resolved (never deleted)."""
    listed = ", ".join(f"'{r}'" for r in rules)
    op.execute(
        f"UPDATE calsync.integrity_issues SET resolved_at = now(), resolved_by = 'downgrade of {revision}', "
        f"resolution = 'rule removed' WHERE resolved_at IS NULL AND rule IN ({listed})"
    )
