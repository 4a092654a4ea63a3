"""Booking throughput with the whole integrity layer against the base schema alone, in the same run.

Two databases get the same generated data (``--salons`` x 1,000 appointments): A stays at revision 0001
(the app as it is), B is migrated to head (every rule and trigger). pgbench then runs the same app-like
workload on each, alternating A, B, A, B (``--rounds``) so drift on this noisy machine hits both alike:
- 70 %: book an appointment in one transaction, as the app does: 80 % a simple service, 20 % a
  Dauerwelle with its 6 phases written by the app;
- 30 %: move one of the 2,000 newest appointments (and its phases) to another time.
Slots are unique by construction (one per host and day, moves onto a private timeline), so no rule
refuses anything and any error is a failure of the run. Prints tps per run and the ratio B/A, and the
server's CPU per transaction (its backends' utime + stime from /proc, over the middle of each run) as a
second, steadier measure of the same cost: on a shared machine tps follows the CPU share the run gets,
CPU per transaction much less.
Goals (issue 14): the layer keeps at least 0.70x the bare throughput and 0.9x the cheapest correct reference.

Where the difference goes: two more databases at head, each with a group of triggers disabled from the
start (ALTER TABLE ... DISABLE TRIGGER), run in the same rounds:
- rules: the outbox's enqueue triggers off, so the integrity rules alone (the outbox is measured on its
  own by outbox_overhead.py);
- rules without busy time: also the triggers that keep calsync.host_busy_time, so no host double-booking
  check. A diagnostic only: that database does not keep the rule.

The cheapest correct reference (issue 14), also in the same rounds: the base schema plus the smallest
design that keeps "no host is ever booked twice" for these writes, which is what PostgreSQL allows at
best: one table holding every appointment's busy time (one row each, a multirange, keyed by the host's
Cal.com user id) under a single EXCLUDE constraint and its primary key, kept by four plain triggers (a
booking, a move, new phases, moved phases), and nothing else: no outbox, no other rule, none of the
layer's indexes, no locking discipline for writes the bench doesn't make. The report gives the layer's
throughput against it as well as against the bare schema.
``--no-attribution`` runs only A, B and the reference.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

import psycopg
from _common import median, pgbench_cost, scratch_database

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
    "reference": (False, [], "cheapest correct reference"),
    "rules": (True, OUTBOX_TRIGGERS, "integrity rules, outbox off"),
    "no_busy": (True, OUTBOX_TRIGGERS + BUSY_TIME_TRIGGERS, "rules without busy time"),
}

# The cheapest correct reference on the base schema (see the module's docstring).
REFERENCE = r"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE ref_busy (
    appointment_id bigint PRIMARY KEY,
    host_id bigint NOT NULL,
    busy tstzmultirange NOT NULL,
    EXCLUDE USING gist (host_id WITH =, busy WITH &&)
);
CREATE FUNCTION ref_host(p_staff uuid) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(calcom_user_id, -1 - (uuid_hash_extended(id, 0) & 9223372036854775807)) FROM staff WHERE id = p_staff
$$;
CREATE FUNCTION ref_book() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ref_busy VALUES (NEW.id, ref_host(NEW.staff_id), tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at)));
    RETURN NULL;
END $$;
CREATE TRIGGER ref_book AFTER INSERT ON appointments FOR EACH ROW
    WHEN (NOT NEW.is_composite AND NEW.staff_id IS NOT NULL AND NEW.status NOT IN ('cancelled', 'no_show'))
    EXECUTE FUNCTION ref_book();
CREATE FUNCTION ref_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ref_busy SET busy = tstzmultirange(tstzrange(NEW.starts_at, NEW.ends_at)) WHERE appointment_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER ref_move AFTER UPDATE OF starts_at, ends_at ON appointments FOR EACH ROW
    WHEN (NOT NEW.is_composite AND (NEW.starts_at, NEW.ends_at) IS DISTINCT FROM (OLD.starts_at, OLD.ends_at))
    EXECUTE FUNCTION ref_move();
CREATE FUNCTION ref_phases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ref_busy
    SELECT p.appointment_id, ref_host(a.staff_id), range_agg(tstzrange(p.start_time, p.end_time))
    FROM appointment_phases p JOIN appointments a ON a.id = p.appointment_id
    WHERE p.appointment_id IN (SELECT appointment_id FROM new_phases) AND p.staff_required
      AND a.staff_id IS NOT NULL AND a.status NOT IN ('cancelled', 'no_show')
    GROUP BY p.appointment_id, a.staff_id
    ON CONFLICT (appointment_id) DO UPDATE SET busy = EXCLUDED.busy;
    RETURN NULL;
END $$;
CREATE TRIGGER ref_phases AFTER INSERT ON appointment_phases REFERENCING NEW TABLE AS new_phases
    FOR EACH STATEMENT EXECUTE FUNCTION ref_phases();
CREATE FUNCTION ref_move_phase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ref_busy SET busy = (SELECT range_agg(tstzrange(start_time, end_time)) FROM appointment_phases
                                WHERE appointment_id = NEW.appointment_id AND staff_required)
    WHERE appointment_id = NEW.appointment_id;
    RETURN NULL;
END $$;
CREATE TRIGGER ref_move_phase AFTER UPDATE OF start_time, end_time ON appointment_phases FOR EACH ROW
    WHEN (NEW.staff_required AND (NEW.start_time, NEW.end_time) IS DISTINCT FROM (OLD.start_time, OLD.end_time))
    EXECUTE FUNCTION ref_move_phase();
INSERT INTO ref_busy
SELECT a.id, ref_host(a.staff_id),
       coalesce((SELECT range_agg(tstzrange(p.start_time, p.end_time)) FROM appointment_phases p
                 WHERE p.appointment_id = a.id AND p.staff_required), tstzmultirange(tstzrange(a.starts_at, a.ends_at)))
FROM appointments a
WHERE a.staff_id IS NOT NULL AND a.status NOT IN ('cancelled', 'no_show') AND a.ends_at > a.starts_at
  AND NOT (a.is_composite AND NOT EXISTS (SELECT 1 FROM appointment_phases p WHERE p.appointment_id = a.id));
"""


def set_triggers(conn: psycopg.Connection, triggers: list[tuple[str, str]], enabled: bool) -> None:
    for table, trigger in triggers:
        conn.execute(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}")


def prepare(
    url: str,
    salons: int,
    layer: bool,
    disabled: list[tuple[str, str]] | None = None,
    reference: bool = False,
    head: str = "heads",
) -> None:
    migrate.upgrade(url, "0001")
    with psycopg.connect(url) as conn:
        datagen.generate(conn, datagen.Params(salons=salons))
        if reference:
            conn.execute(REFERENCE)  # type: ignore[arg-type]
    if layer:
        migrate.upgrade(url, head)
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
    ap.add_argument(
        "--before",
        metavar="REVISION",
        help="also the whole layer at an older revision (e.g. 0018, before issue 14), in the same rounds",
    )
    args = ap.parse_args()
    names = ["bare", "layer", "reference"] if args.no_attribution else list(VARIANTS)
    if args.before:
        VARIANTS["before"] = (True, [], f"whole layer at {args.before}")
        names.insert(2, "before")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {name: stack.enter_context(scratch_database(name)) for name in names}
        for name, url in urls.items():
            layer, disabled, _ = VARIANTS[name]
            head = args.before if name == "before" else "heads"
            prepare(url, args.salons, layer, disabled, reference=name == "reference", head=head)
        (tmp / "book.sql").write_text(BOOK.format(salons=args.salons))
        (tmp / "move.sql").write_text(MOVE.format(window=2000))
        scripts = [f"{tmp / 'book.sql'}@7", f"{tmp / 'move.sql'}@3"]
        results: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for rnd in range(args.rounds):
            for name in names if rnd % 2 == 0 else names[::-1]:
                tps, ms = pgbench_cost(urls[name], scripts, args.clients, args.seconds)
                results[name].append(tps)
                if ms is not None:
                    cpu[name].append(ms)
                shown = f"{ms:6.3f} ms CPU/transaction" if ms is not None else ""
                print(f"round {rnd + 1}  {name:9}  {tps:8.1f} tps  {shown}", flush=True)
    b, ref = median(results["bare"]), median(results["reference"])
    print(
        f"\nbooking throughput, {args.clients} clients, {args.seconds}s x {args.rounds} rounds each "
        f"(70% book incl. 20% composite with phases, 30% move); the server's CPU per transaction "
        f"(its backends, from /proc) as a throughput at equal CPU:"
    )
    print(
        f"  {'':30} {'median tps':>11} {'vs bare':>8} {'vs ref.':>8}   {'CPU ms/xact':>11} {'vs bare':>8} {'vs ref.':>8}"
    )
    cb, cref = median(cpu["bare"]), median(cpu["reference"])
    for name in names:
        tps, ms = median(results[name]), median(cpu[name])
        print(
            f"  {VARIANTS[name][2]:30} {tps:11.1f} {tps / b:7.2f}x {tps / ref:7.2f}x   "
            f"{ms:11.3f} {cb / ms:7.2f}x {cref / ms:7.2f}x"
        )
    ratio, vs_ref = median(results["layer"]) / b, median(results["layer"]) / ref
    c_ratio, c_ref = cb / median(cpu["layer"]), cref / median(cpu["layer"])
    print(
        f"goal: whole layer >= 0.70x bare: {ratio:.2f}x by tps, {c_ratio:.2f}x by CPU per transaction: "
        f"{'met' if min(ratio, c_ratio) >= 0.70 else 'met by CPU only' if c_ratio >= 0.70 else 'missed'}"
    )
    print(
        f"goal: whole layer >= 0.90x the cheapest correct reference: {vs_ref:.2f}x by tps, {c_ref:.2f}x by CPU "
        f"per transaction: {'met' if min(vs_ref, c_ref) >= 0.9 else 'met by CPU only' if c_ref >= 0.9 else 'missed'}"
    )


if __name__ == "__main__":
    main()
