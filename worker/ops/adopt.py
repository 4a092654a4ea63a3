"""`calsync adopt`: bring an existing app database under calsync by stamping revision 0001.

Revision 0001 describes the tables the app already has. Stamping tells Alembic they exist, so the
later revisions can be applied. Before stamping, check that every table and column revision 0001
relies on is there with a compatible type; refuse with the full list of differences otherwise.
Extra tables and columns are fine (the real app has about 75 columns on appointments).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.db import connect, query
from worker.ops import migrate

FAMILIES: dict[str, set[str]] = {
    "int": {"smallint", "integer", "bigint"},
    "text": {"text", "character varying", "character"},
    "uuid": {"uuid"},
    "bool": {"boolean"},
    "timestamptz": {"timestamp with time zone"},
    "jsonb": {"jsonb"},
}


@dataclass(frozen=True)
class Mismatch:
    table: str
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.problem}"


def expected_columns() -> dict[str, dict[str, str]]:
    module = migrate.script().get_revision("0001").module
    cols: dict[str, dict[str, str]] = module.EXPECTED_COLUMNS
    return cols


def check(url: str, schema: str = "public") -> list[Mismatch]:
    expected = expected_columns()
    with connect(url) as conn:
        rows = conn.execute(query("adopt_columns"), {"schema": schema, "tables": list(expected)}).fetchall()
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        found.setdefault(str(table), {})[str(column)] = str(data_type)
    problems: list[Mismatch] = []
    for table, columns in expected.items():
        if table not in found:
            problems.append(Mismatch(table, None, f"table is missing from schema {schema}"))
            continue
        for column, family in columns.items():
            have = found[table].get(column)
            if have is None:
                problems.append(Mismatch(table, column, f"column is missing (expected {family})"))
            elif have not in FAMILIES[family]:
                problems.append(Mismatch(table, column, f"type {have} is not compatible with {family}"))
    return problems


class AdoptRefused(RuntimeError):
    pass


def adopt(url: str) -> None:
    heads = migrate.current_heads(url)
    if heads:
        raise AdoptRefused(f"this database is already managed by calsync (revision {sorted(heads)})")
    problems = check(url)
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise AdoptRefused(
            f"the existing tables do not match revision 0001 ({len(problems)} differences):\n  {listing}\n"
            "Fix these columns (or migrate them) first; nothing was stamped."
        )
    migrate.stamp(url, "0001")
