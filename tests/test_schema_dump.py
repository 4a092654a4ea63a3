"""tests/schema.sql is the committed, reviewable picture of the schema at head; it must be current."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from tests.conftest import Db
from tests.schema_dump import SCHEMA_FILE, dump
from worker.ops import migrate


@pytest.fixture
def bare_db(postgresql_proc: PostgreSQLExecutor) -> Iterator[Db]:
    """An empty database without test extensions, so the dump holds only what the migrations made."""
    name = f"bare_{uuid.uuid4().hex[:12]}"
    with DatabaseJanitor(user=postgresql_proc.user, host=postgresql_proc.host, port=postgresql_proc.port, dbname=name):
        yield Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, name)


def test_committed_schema_dump_is_current(bare_db: Db) -> None:
    migrate.upgrade(bare_db.url, "heads")
    current = dump(bare_db.url)
    committed = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
    assert current == committed, "tests/schema.sql is stale: run `make schema` and review the diff"
