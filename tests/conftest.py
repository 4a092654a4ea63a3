"""Test harness: one real PostgreSQL 15 per session, a template migrated to head once, a clone per test.

- The server is started through pytest-postgresql's ``PostgreSQLExecutor``. ``initdb``/``postgres``
  refuse to run as root, so as root ``tests/bin/pg_ctl`` runs pg_ctl as the ``postgres`` OS user, in a
  fresh temporary directory that user owns.
- ``calsync_test_tmpl`` gets the extensions (pgtap, btree_gist, pg_stat_statements) and
  ``alembic upgrade heads`` once; pytest-postgresql's ``postgresql`` fixture then gives every test its
  own ``CREATE DATABASE … TEMPLATE calsync_test_tmpl`` clone and drops it afterwards.
- ``fresh_db`` is an empty database (no revision applied) for migration tests.
"""

from __future__ import annotations

import math
import os
import pwd
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from worker.ops import migrate

TESTS = Path(__file__).resolve().parent
PG_BINDIR = Path(os.environ.get("CALSYNC_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
OS_USER = os.environ.get("CALSYNC_TEST_OS_USER", "postgres")
DBNAME = "calsync_test"
EXTENSIONS = ("pgtap", "btree_gist", "pg_stat_statements")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Db:
    """A database on the session server: what tests need to reach it."""

    host: str
    port: int
    user: str
    dbname: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, **kw: object) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, **kw)  # type: ignore[arg-type]


def create_extensions(db: Db) -> None:
    with db.connect(autocommit=True) as conn:
        for ext in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")


def start_server(dbname: str = DBNAME) -> tuple[PostgreSQLExecutor, Path]:
    """A PostgreSQL 15 server in a fresh directory, through pytest-postgresql's executor (as the postgres
    OS user when root). Returns the executor and its directory (remove it after executor.stop())."""
    base = Path(tempfile.mkdtemp(prefix="calsync-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam(OS_USER)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    executor = PostgreSQLExecutor(
        executable=str(TESTS / "bin" / "pg_ctl"),
        host="127.0.0.1",
        port=_free_port(),
        datadir=str(base / "data"),
        unixsocketdir=str(base),
        logfile=str(base / "postgresql.log"),
        startparams="-w",
        dbname=dbname,
        user="postgres",
        postgres_options=(
            "-c shared_preload_libraries=pg_stat_statements -c max_connections=300 "
            "-c synchronous_commit=off -c full_page_writes=off"
        ),
    )
    executor.start()
    return executor, base


# The last revision before the integrity rules: the runbook must work on a database that has not taken them.
BEFORE_RULES = "0005"
BEFORE_RULES_TEMPLATE = "calsync_before_rules_tmpl"


def prepare_template(executor: PostgreSQLExecutor, name: str, revision: str = "heads") -> Db:
    """Create database ``name``, add the test extensions, migrate it and load the test helpers."""
    DatabaseJanitor(user=executor.user, host=executor.host, port=executor.port, dbname=name).init()
    template = Db(executor.host, executor.port, executor.user, name)
    create_extensions(template)
    migrate.upgrade(template.url, revision)
    with template.connect() as conn:
        conn.execute((TESTS / "sql" / "helpers.sql").read_text())  # type: ignore[arg-type]
        conn.commit()
    return template


@pytest.fixture(scope="session")
def postgresql_proc() -> Iterator[PostgreSQLExecutor]:
    executor, base = start_server()
    try:
        prepare_template(executor, executor.template_dbname)
        prepare_template(executor, BEFORE_RULES_TEMPLATE, BEFORE_RULES)
        yield executor
    finally:
        try:
            executor.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


postgresql = factories.postgresql("postgresql_proc")
CLONE_SECONDS: list[float] = []  # setup time of each test's clone of the template (the postgresql fixture)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    if fixturedef.argname == "postgresql":
        CLONE_SECONDS.append(time.perf_counter() - started)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A measurement, not a test: what a fresh database per test costs (CREATE DATABASE … TEMPLATE and connect)."""
    if CLONE_SECONDS:
        ms = sorted(x * 1000 for x in CLONE_SECONDS)
        terminalreporter.write_line(
            f"per-test database clones: {len(ms)}, median {statistics.median(ms):.0f} ms, "
            f"p90 {ms[math.ceil(0.9 * len(ms)) - 1]:.0f} ms, max {ms[-1]:.0f} ms, total {sum(ms) / 1000:.1f} s"
        )


@pytest.fixture
def db(postgresql: psycopg.Connection[tuple[object, ...]], postgresql_proc: PostgreSQLExecutor) -> Db:
    """The per-test clone of the migrated template."""
    info = postgresql.info
    postgresql.commit()
    return Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, info.dbname)


@pytest.fixture
def conn(db: Db) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the per-test database."""
    with db.connect(autocommit=True) as c:
        yield c


@pytest.fixture
def fresh_db(postgresql_proc: PostgreSQLExecutor) -> Iterator[Db]:
    """An empty database (extensions only, no revision applied), dropped afterwards."""
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(
        user=postgresql_proc.user,
        host=postgresql_proc.host,
        port=postgresql_proc.port,
        dbname=name,
    )
    with janitor:
        d = Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, name)
        create_extensions(d)
        yield d


@pytest.fixture
def db_factory(postgresql_proc: PostgreSQLExecutor) -> Iterator[Callable[[], Db]]:
    """Make more clones of the migrated template within one test (dropped afterwards)."""
    janitors: list[DatabaseJanitor] = []

    def make() -> Db:
        name = f"extra_{uuid.uuid4().hex[:12]}"
        janitor = DatabaseJanitor(
            user=postgresql_proc.user,
            host=postgresql_proc.host,
            port=postgresql_proc.port,
            dbname=name,
            template_dbname=postgresql_proc.template_dbname,
        )
        janitor.init()
        janitors.append(janitor)
        return Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, name)

    yield make
    for j in janitors:
        j.drop()


@pytest.fixture
def db_before_rules(postgresql_proc: PostgreSQLExecutor) -> Iterator[Db]:
    """A clone of the template at the last revision before the integrity rules (with the test helpers)."""
    name = f"before_rules_{uuid.uuid4().hex[:12]}"
    with DatabaseJanitor(
        user=postgresql_proc.user,
        host=postgresql_proc.host,
        port=postgresql_proc.port,
        dbname=name,
        template_dbname=BEFORE_RULES_TEMPLATE,
    ):
        yield Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, name)
