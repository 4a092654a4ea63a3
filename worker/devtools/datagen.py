"""Deterministic, set-based demo and benchmark data (`calsync generate`).

``--scale N`` makes N salons of ``appointments_per_salon`` appointments each (default 1,000, so
``--scale 1000`` is 1,000,000 appointments with their phases). All rows come from a handful of
``INSERT … SELECT`` statements over ``generate_series`` in one transaction (sql/queries/datagen.sql),
so the data is the same for the same parameters and anchor date, whatever the machine.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import psycopg

from worker.db import connect, query

STEPS = (
    "datagen_templates",
    "datagen_companies",
    "datagen_customers",
    "datagen_appointments",
    "datagen_phases",
)


@dataclass(frozen=True)
class Params:
    salons: int = 1
    appointments_per_salon: int = 1000
    customers_per_salon: int | None = None  # default: half the appointments
    anchor: dt.date | dt.datetime | None = None  # default: today (UTC); a datetime is "now" for the incident data
    seed: int = 42
    failed_permille: int = 20
    pending_permille: int = 30
    anonymous_percent: int = 6  # customers who called anonymously (anonymous_ phone, no e-mail)
    id_offset: int = 0  # appointments and customers get ids from id_offset + 1 (room for hand-made rows)

    def sql_params(self) -> dict[str, object]:
        if not 1 <= self.appointments_per_salon <= 7 * 365:
            raise ValueError("appointments_per_salon must be between 1 and 2555 (7 hosts x 365 days)")
        customers = self.customers_per_salon or max(1, self.appointments_per_salon // 2)
        if self.appointments_per_salon > customers * 10:
            raise ValueError("at most 10 appointments per customer (customers_per_salon is too small)")
        return {
            "salons": self.salons,
            "appointments": self.appointments_per_salon,
            "customers": customers,
            "anchor": (self.anchor or dt.datetime.now(dt.UTC).date()).isoformat(),
            "seed": self.seed,
            "failed_permille": self.failed_permille,
            "pending_permille": self.pending_permille,
            "anonymous_percent": self.anonymous_percent,
            "id_offset": self.id_offset,
        }


class NotEmpty(RuntimeError):
    pass


def generate(
    conn: psycopg.Connection[tuple[object, ...]], params: Params, then: tuple[str, ...] = ()
) -> dict[str, float]:
    """Fill an empty base schema, then run the named blocks ``then`` (e.g. incident_dataset) in the same
    transaction with the same parameters; returns seconds per step."""
    p = params.sql_params()
    timings: dict[str, float] = {}
    if conn.execute("SELECT EXISTS (SELECT 1 FROM companies)").fetchone() != (False,):
        raise NotEmpty("the database already holds companies; generate into an empty (freshly migrated) database")
    with conn.transaction(), psycopg.ClientCursor(conn) as cur:
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        for step in (*STEPS, "datagen_sequences", *then):
            t0 = time.perf_counter()
            cur.execute(query(step), p if "%(" in query(step) else None)
            timings[step] = time.perf_counter() - t0
    return timings


def summary(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[str, int]]:
    return [(str(w), int(n)) for w, n in conn.execute(query("demo_summary"), {}).fetchall()]  # type: ignore[call-overload]


def run(url: str, params: Params) -> dict[str, float]:
    with connect(url) as conn:
        return generate(conn, params)
