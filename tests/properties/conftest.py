"""One clone of the migrated template for all property tests, with a salon committed once; every example
runs in a transaction of its own that is rolled back (harness.example), so examples are independent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from tests.conftest import Db
from tests.properties import harness


@dataclass(frozen=True)
class Base:
    """The committed salon: ids by name."""

    company: int
    staff: dict[str, str]  # name -> staff id; fabian_a/fabian_b are one Cal.com user, aushilfe has none
    services: dict[str, int]  # name -> service id
    customers: dict[str, int]


def _make_base(conn: psycopg.Connection[tuple[object, ...]]) -> Base:
    salon = conn.execute("SELECT tests.make_salon()").fetchone()[0]  # type: ignore[index]
    company = int(salon["company"])
    staff = {"lena": salon["lena"], "mia": salon["mia"]}
    for name, user in (("fabian_a", 1414768), ("fabian_b", 1414768), ("aushilfe", None)):
        staff[name] = str(conn.execute("SELECT tests.make_staff(%s, %s, %s)", [company, name, user]).fetchone()[0])  # type: ignore[index]
    services = {"cut": int(salon["cut"]), "perm": int(salon["perm"])}
    legacy = [
        {"key": "A", "name": "Ansatz färben", "duration": 40, "gap_after": 30, "preferSameStaff": True},
        {"key": "B", "name": "Längenausgleich", "duration": 15, "gap_after": 0},
        {"key": "C", "name": "Schneiden", "duration": 40},
        {"key": "D", "name": "Föhnen", "duration": 30},
    ]
    ranges = [
        {"key": "A", "name": "Ansatz", "durationMin": 30, "durationMax": 40, "gapAfterMin": 20, "gapAfterMax": 30,
         "allowedRoles": ["colorist"], "preferSameStaff": True},
        {"key": "B", "name": "Schneiden", "durationMin": 40, "durationMax": 50, "allowedRoles": ["stylist"]},
    ]  # fmt: skip
    for name, minutes, segments in (
        ("legacy", 155, legacy),
        ("ranges", 90, ranges),
        ("broken", 60, [{"key": "A", "name": "ohne Dauer"}]),
    ):
        services[name] = int(
            conn.execute(
                "SELECT tests.make_service(%s, %s, %s, %s::jsonb)", [company, name, minutes, json.dumps(segments)]
            ).fetchone()[0]  # type: ignore[index]
        )
    customers = {"hans": int(salon["customer"])}
    for name, email, phone in (
        ("petra", "petra.mueller@mail.example", None),
        ("klaus", None, "+4930123456"),
        ("anon", None, "anonymous_1763495863_2d3eaf7e"),
    ):
        customers[name] = int(
            conn.execute("SELECT tests.make_customer(%s, %s, %s, %s)", [company, name, email, phone]).fetchone()[0]  # type: ignore[index]
        )
    return Base(company, staff, services, customers)


@pytest.fixture(scope="package")
def fuzz_db(postgresql_proc: PostgreSQLExecutor) -> Iterator[Db]:
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    with DatabaseJanitor(
        user=postgresql_proc.user,
        host=postgresql_proc.host,
        port=postgresql_proc.port,
        dbname=name,
        template_dbname=postgresql_proc.template_dbname,
    ):
        yield Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, name)


@pytest.fixture(scope="package")
def base(fuzz_db: Db) -> Base:
    with fuzz_db.connect() as conn:
        made = _make_base(conn)
        conn.commit()
    return made


@pytest.fixture(scope="package")
def fx(fuzz_db: Db, base: Base) -> Iterator[harness.Conn]:
    """The examples' connection (Europe/Berlin, the salon's zone); each example rolls back."""
    with fuzz_db.connect() as conn:
        conn.execute("SET TimeZone = 'Europe/Berlin'")
        conn.commit()
        yield conn


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many fuzzed cases ran, per property, and how they ended."""
    stats = harness.STATS
    if not stats.cases:
        return
    total = sum(stats.cases.values())
    per = ", ".join(f"{p} {n:,}" for p, n in sorted(stats.cases.items()))
    terminalreporter.write_line(f"property-based cases run: {total:,} ({per}); profile {harness.PROFILE}")
    for (prop, outcome), n in sorted(stats.outcomes.items()):
        terminalreporter.write_line(f"  {prop:<13} {outcome:<60} {n:>7,}")
