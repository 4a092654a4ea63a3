"""The typed contract between the worker and the database has one shape on both sides.

Each msgspec struct in worker/sync/contract.py names its composite type (``SQL_TYPE``); the type's attributes in
the migrated database must be the struct's fields, in order, with matching types. The categories the worker
reports must be exactly the worker's rows of remediation.categories, which decides whether each retries.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
import uuid
from typing import Any

import pytest

from tests.conftest import Db
from worker.ops import reconcile_contract
from worker.sync import contract
from worker.sync.categories import KEY_SCOPE, RETRYABLE, Category
from worker.webhooks import contract as webhook_contract

SCALARS: dict[Any, set[str]] = {
    int: {"bigint", "integer"},
    str: {"text"},
    bool: {"boolean"},
    float: {"double precision"},
    dt.datetime: {"timestamp with time zone"},
    uuid.UUID: {"uuid"},
}


def sql_types(annotation: Any) -> set[str]:
    """The SQL type names a Python field type may have in its composite twin."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        assert len(args) == 1, f"only X | None is part of the contract, not {annotation}"
        return sql_types(args[0])
    if origin is list:
        return {t + "[]" for t in sql_types(args[0])}
    if origin is dict:
        return {"jsonb"}
    if isinstance(annotation, type) and issubclass(annotation, contract._Row):
        return {annotation.SQL_TYPE}
    return SCALARS[annotation]


def composite(db: Db, name: str) -> list[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [name],
        ).fetchall()
    return [(str(n), str(t).replace("calsync.", "")) for n, t in rows]


@pytest.mark.parametrize(
    "cls", contract.CONTRACT + reconcile_contract.CONTRACT + webhook_contract.CONTRACT, ids=lambda c: c.__name__
)
def test_each_struct_matches_its_composite_type(db: Db, cls: type[contract._Row]) -> None:
    hints = typing.get_type_hints(cls)
    python = [(f, sql_types(hints[f])) for f in cls.__struct_fields__]
    sql = composite(db, cls.SQL_TYPE)
    assert [n for n, _ in python] == [n for n, _ in sql], f"{cls.__name__} and {cls.SQL_TYPE} have other fields"
    for (name, allowed), (_, have) in zip(python, sql, strict=True):
        allowed = {a.replace("calsync.", "") for a in allowed}
        assert have in allowed, f"{cls.__name__}.{name} is {sorted(allowed)} in Python but {have} in SQL"


def test_the_comparison_can_fail(db: Db) -> None:
    """A field on one side only is caught: a struct with one more field than its composite type."""

    class Wider(contract.Service, frozen=True):
        added_in_python_only: int = 0

    hints = typing.get_type_hints(Wider)
    assert [f for f in Wider.__struct_fields__] != [n for n, _ in composite(db, Wider.SQL_TYPE)]
    assert sql_types(hints["added_in_python_only"]) == {"bigint", "integer"}


def test_categories_are_the_tables_rows(db: Db) -> None:
    with db.connect() as conn:
        rows = dict(conn.execute("SELECT category, retryable FROM remediation.categories WHERE origin = 'worker'"))
        key_scope = {str(r[0]) for r in conn.execute("SELECT category FROM remediation.categories WHERE scope = 'key'")}
    reported = {str(c) for c in Category} - {str(Category.OK)}
    assert reported == set(rows), "every category the worker reports is a row of remediation.categories, no more"
    assert {c for c, retry in rows.items() if retry} == {str(c) for c in RETRYABLE}, (
        "categories.RETRYABLE mirrors remediation.categories.retryable (the database decides)"
    )
    assert key_scope == {str(c) for c in KEY_SCOPE}, "categories.KEY_SCOPE mirrors remediation.categories.scope"


def test_a_state_document_decodes_strictly(db: Db) -> None:
    """What the database sends decodes into SyncState; an unknown field is refused, not ignored."""
    with db.connect() as conn:
        row = conn.execute("SELECT to_jsonb(s)::text FROM calsync.appointment_sync_state(ARRAY[424242]) s").fetchone()
    assert row is not None
    state = contract.decode_state(str(row[0]))
    assert state.id == 424242 and state.deleted and state.status == "cancelled" and state.synced == []
    import msgspec

    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        contract.decode_state(str(row[0])[:-1] + ', "surprise": 1}')
