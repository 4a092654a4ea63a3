"""Booking throughput with the whole integrity layer against the base schema alone, in the same run.

Two databases get the same generated data (``--salons`` x 1,000 appointments): A stays at revision 0001
(the app as it is), B is migrated to head (every rule and trigger). pgbench then runs the same app-like
workload on each, alternating A, B, A, B (``--rounds``) so drift on this noisy machine hits both alike:
- 70 %: book an appointment in one transaction, as the app does: 80 % a simple service, 20 % a
  Dauerwelle with its 6 phases written by the app;
- 30 %: move one of the 2,000 newest appointments (and its phases) to another time.
Slots are unique by construction (one per host and day, moves onto a private timeline), so no rule
refuses anything and any error is a failure of the run. Prints tps per run and the ratio B/A.
Goal (issue 3): the layer keeps at least 0.85x the bare throughput.

Where the difference goes: two more databases at head, each with a group of triggers disabled from the
start (ALTER TABLE ... DISABLE TRIGGER), run in the same rounds:
- rules: the outbox's enqueue triggers off, so the integrity rules alone (the outbox is measured on its
  own by outbox_overhead.py);
- rules without busy time: also the triggers that keep calsync.host_busy_time, so no host double-booking
  check. A diagnostic only: that database does not keep the rule.
``--no-attribution`` runs only A and B.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

import psycopg
from _common import median, pgbench_tps, scratch_database

from worker.devtools import datagen
from worker.ops import migrate

# host h of salon c, one slot per host and day (a sequence), so no rule refuses anything
SLOT = r"""
SELECT nextval('bench_slot') AS n \gset
\set salons {salons}
\set c 1 + :n % :salons
\set h (:n / :salons) % 7
\set d :n / (:salons * 7)
\set k 0
\if :h > 0
\set k :h + 1
\endif
\set cust (:c - 1) * 500 + ((:h + :d * 7) % 500) + 1
"""
SIMPLE_BOOKING = """
INSERT INTO appointments (company_id, branch_id, customer_id, service_id, staff_id, starts_at, ends_at, status,
                          source)
VALUES (:c, md5('branch-' || :c)::uuid, :cust, (:c - 1) * 10 + 1, md5('staff-' || :c || '-' || :k)::uuid,
        timestamptz '2029-01-01 10:00+01' + :d * interval '1 day',
        timestamptz '2029-01-01 11:00+01' + :d * interval '1 day', 'confirmed', 'bench');
"""
BOOK = "".join(
    (
        SLOT,
        r"""
\set composite random(1, 100) <= 20
BEGIN;
\if :composite
INSERT INTO appointments (company_id, branch_id, customer_id, service_id, staff_id, starts_at, ends_at, status,
                          source, is_composite)
VALUES (:c, md5('branch-' || :c)::uuid, :cust, (:c - 1) * 10 + 7, md5('staff-' || :c || '-' || :k)::uuid,
        timestamptz '2029-01-01 10:00+01' + :d * interval '1 day',
        timestamptz '2029-01-01 10:00+01' + :d * interval '1 day' + interval '135 minutes', 'confirmed', 'bench', true)
RETURNING id AS appt \gset
INSERT INTO appointment_phases (appointment_id, phase_type, segment_key, segment_name, sequence_order,
                                start_offset_minutes, duration_minutes, staff_required, start_time, end_time)
SELECT :appt, v.t, v.k, v.k, v.s, v.o, v.m, v.r,
       timestamptz '2029-01-01 10:00+01' + :d * interval '1 day' + v.o * interval '1 minute',
       timestamptz '2029-01-01 10:00+01' + :d * interval '1 day' + (v.o + v.m) * interval '1 minute'
FROM (VALUES (1, 'initial', 'A', 0, 50, true), (2, 'processing', 'A_gap', 50, 15, false),
             (3, 'final', 'B', 65, 5, true), (4, 'processing', 'B_gap', 70, 10, false),
             (5, 'final', 'C', 80, 15, true), (6, 'final', 'D', 95, 40, true)) AS v(s, t, k, o, m, r);
\else
""",
        SIMPLE_BOOKING,
        r"""\endif
COMMIT;
""",
    )
)

MOVE = r"""
SELECT nextval('bench_move') AS m, (SELECT max(id) FROM appointments) AS top \gset
\set target random(:top - {window}, :top)
BEGIN;
UPDATE appointments SET starts_at = timestamptz '2040-01-01 00:00+00' + :m * interval '3 hours',
                        ends_at = timestamptz '2040-01-01 00:00+00' + :m * interval '3 hours' + (ends_at - starts_at)
WHERE id = :target;
UPDATE appointment_phases p SET start_time = a.starts_at + p.start_offset_minutes * interval '1 minute',
                                end_time = a.starts_at + (p.start_offset_minutes + p.duration_minutes) * interval '1 minute'
FROM appointments a WHERE a.id = :target AND p.appointment_id = a.id;
COMMIT;
"""


# the outbox's enqueue triggers (outbox_overhead.py switches them too)
OUTBOX_TRIGGERS = [
    ("appointments", "appointments_enqueue_sync"),
    ("appointments", "appointments_enqueue_sync_on_change"),
    ("appointment_phases", "appointment_phases_enqueue_sync_insert"),
    ("appointment_phases", "appointment_phases_enqueue_sync_update"),
    ("appointment_phases", "appointment_phases_enqueue_sync_delete"),
]
# the triggers that keep calsync.host_busy_time (revision 0012)
BUSY_TIME_TRIGGERS = [
    ("appointments", "appointments_reserve_host_time"),
    ("appointments", "appointments_reserve_host_time_on_change"),
    ("appointments", "appointments_reserve_host_time_at_commit"),
    ("appointments", "appointments_release_host_time"),
    ("appointment_phases", "appointment_phases_reserve_host_time_insert"),
    ("appointment_phases", "appointment_phases_reserve_host_time_update"),
    ("appointment_phases", "appointment_phases_reserve_host_time_delete"),
]
# name: (migrated to head, triggers disabled, label)
VARIANTS: dict[str, tuple[bool, list[tuple[str, str]], str]] = {
    "bare": (False, [], "base schema (0001)"),
    "layer": (True, [], "whole layer (head)"),
    "rules": (True, OUTBOX_TRIGGERS, "integrity rules, outbox off"),
    "no_busy": (True, OUTBOX_TRIGGERS + BUSY_TIME_TRIGGERS, "rules without busy time"),
}


def set_triggers(conn: psycopg.Connection, triggers: list[tuple[str, str]], enabled: bool) -> None:
    for table, trigger in triggers:
        conn.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}")


def prepare(url: str, salons: int, layer: bool, disabled: list[tuple[str, str]] | None = None) -> None:
    migrate.upgrade(url, "0001")
    with psycopg.connect(url) as conn:
        datagen.generate(conn, datagen.Params(salons=salons))
    if layer:
        migrate.upgrade(url, "heads")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE bench_slot")
        conn.execute("CREATE SEQUENCE bench_move")
        set_triggers(conn, disabled or [], False)
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salons", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-attribution", action="store_true", help="only the base schema and the whole layer")
    args = ap.parse_args()
    names = ["bare", "layer"] if args.no_attribution else list(VARIANTS)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {name: stack.enter_context(scratch_database(name)) for name in names}
        for name, url in urls.items():
            layer, disabled, _ = VARIANTS[name]
            prepare(url, args.salons, layer, disabled)
        (tmp / "book.sql").write_text(BOOK.format(salons=args.salons))
        (tmp / "move.sql").write_text(MOVE.format(window=2000))
        scripts = [f"{tmp / 'book.sql'}@7", f"{tmp / 'move.sql'}@3"]
        results: dict[str, list[float]] = {name: [] for name in names}
        for rnd in range(args.rounds):
            for name in names if rnd % 2 == 0 else names[::-1]:
                tps = pgbench_tps(urls[name], scripts, args.clients, args.seconds)
                results[name].append(tps)
                print(f"round {rnd + 1}  {name:8}  {tps:8.1f} tps", flush=True)
    b = median(results["bare"])
    print(
        f"\nbooking throughput, {args.clients} clients, {args.seconds}s x {args.rounds} rounds each "
        f"(70% book incl. 20% composite with phases, 30% move):"
    )
    for name in names:
        tps = median(results[name])
        print(f"  {VARIANTS[name][2]:30} median {tps:8.1f} tps   {tps / b:.2f}x")
    ratio = median(results["layer"]) / b
    print(f"goal: whole layer >= 0.85x bare ({ratio:.2f}x): {'met' if ratio >= 0.85 else 'missed'}")


if __name__ == "__main__":
    main()
