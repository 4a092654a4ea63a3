"""What the outbox costs the app's booking writes: pgbench tps with the enqueue triggers on against off, same run.

One database at head with the generated demo data (``--salons`` x 1,000 appointments, as booking_throughput.py).
pgbench (``--clients`` clients, 2 threads) books one live appointment per transaction, each at a slot of its
own (a sequence), in rounds of ``--seconds`` that alternate "on" and "off" (``--rounds`` of each):
- on: the outbox triggers as deployed: each booking inserts a calsync.outbox row; a worker row in
  calsync.outbox_listeners says idle=false (a busy worker, the normal case under load), so nothing notifies;
- off: ALTER TABLE … DISABLE TRIGGER on the appointments and appointment_phases enqueue triggers.
A last round runs "on" with the listener row idle=true (and a connection LISTENing and reading), so every
booking's statement NOTIFYs: the cost the idle flag avoids. Before each round: CHECKPOINT, and the outbox is
emptied (a worker that keeps up). Prints tps per round, medians, and the ratio on/off.
Goal (issue: outbox): booking throughput with the outbox >= 0.9x without it.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

import psycopg
from _common import median, pgbench_tps, scratch_database
from booking_throughput import OUTBOX_TRIGGERS, SIMPLE_BOOKING, SLOT, prepare, set_triggers

# the simple-service branch of booking_throughput.py's BOOK, one booking per transaction
BOOK = SLOT + SIMPLE_BOOKING


def set_mode(conn: psycopg.Connection, on: bool, idle: bool) -> None:
    set_triggers(conn, OUTBOX_TRIGGERS, on)
    conn.execute(
        "UPDATE calsync.outbox_listeners SET idle = %s, heartbeat_at = now() WHERE worker_id = 'bench'", [idle]
    )
    conn.execute("TRUNCATE calsync.outbox")
    conn.execute("CHECKPOINT")


def listen(url: str, stop: threading.Event, got: list[int]) -> None:
    """An idle worker's LISTEN connection: reads every notification (so the queue never backs up)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN calsync_outbox")
        while not stop.is_set():
            got[0] += sum(1 for _ in conn.notifies(timeout=0.5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salons", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=4, help="rounds of each of on and off")
    args = ap.parse_args()
    with scratch_database("overhead") as url, tempfile.TemporaryDirectory() as tmp:
        prepare(url, args.salons, True)
        script = Path(tmp) / "book.sql"
        script.write_text(BOOK.format(salons=args.salons))
        results: dict[str, list[float]] = {"on": [], "off": []}
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO calsync.outbox_listeners (worker_id, idle) VALUES ('bench', false)")
            for rnd in range(args.rounds):
                for mode in ("on", "off") if rnd % 2 == 0 else ("off", "on"):
                    set_mode(conn, mode == "on", idle=False)
                    tps = pgbench_tps(url, [str(script)], args.clients, args.seconds)
                    queued = conn.execute("SELECT count(*) FROM calsync.outbox").fetchone()[0]  # type: ignore[index]
                    results[mode].append(tps)
                    print(f"round {rnd + 1}  {mode:3}  {tps:8.1f} tps   outbox rows {queued}", flush=True)
            set_mode(conn, True, idle=True)
            stop, got = threading.Event(), [0]
            listener = threading.Thread(target=listen, args=(url, stop, got))
            listener.start()
            idle_tps = pgbench_tps(url, [str(script)], args.clients, args.seconds)
            stop.set()
            listener.join()
            print(f"idle=true  on   {idle_tps:8.1f} tps   notifications received {got[0]}", flush=True)
            set_mode(conn, True, idle=False)
    on, off = median(results["on"]), median(results["off"])
    print(
        f"\nbooking writes, {args.clients} clients (-j 2), {args.seconds} s x {args.rounds} rounds each, one booking per transaction:"
    )
    print(f"  outbox off (triggers disabled)      median {off:8.1f} tps")
    print(f"  outbox on, worker busy (idle=false) median {on:8.1f} tps   {on / off:.2f}x")
    print(
        f"  outbox on, worker idle (idle=true)  1 round {idle_tps:8.1f} tps   {idle_tps / off:.2f}x (NOTIFY per booking)"
    )
    print(f"goal: on/off >= 0.9x ({on / off:.2f}x): {'met' if on / off >= 0.9 else 'missed'}")


if __name__ == "__main__":
    main()
