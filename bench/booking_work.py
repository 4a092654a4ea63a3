"""The work one booking transaction costs, counted rather than timed: statements run inside triggers and functions,
and WAL bytes (by relation), per transaction, for the bare schema, the cheapest correct reference and the layer.

booking_throughput.py's tps and CPU figures move by ±30 % from round to round on this shared machine; these counts
do not. Each variant gets a fresh database (``--salons`` x 1,000 generated appointments, as booking_throughput.py),
then one pgbench client runs ``--transactions`` of the same workload (70 % bookings incl. 20 % Dauerwelle with 6
phases, 30 % moves) with a fixed random seed, after a CHECKPOINT:
- nested statements per transaction: pg_stat_statements (track = all) calls that are not top level (the bare
  schema's are its foreign-key checks);
- WAL bytes per transaction (pg_current_wal_lsn before and after), and with ``--by-relation`` its split by
  relation from pg_walinspect (full-page images included, GiST records by type).
``--before REV`` adds the layer at an older revision (e.g. 0024, before revision 0025).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import psycopg
from _common import PG_BINDIR, scratch_database
from booking_throughput import BOOK, MOVE, prepare

BY_RELATION = r"""
WITH r AS (
    SELECT resource_manager, record_type, record_length,
           (regexp_match(block_ref, 'rel \d+/\d+/(\d+)'))[1]::oid AS relfile
    FROM pg_get_wal_records_info(%(start)s, %(end)s)
)
SELECT coalesce(c.relname, r.resource_manager) || CASE WHEN r.resource_manager = 'Gist' THEN ' ' || r.record_type
                                                       ELSE '' END AS what,
       count(*) AS records, sum(r.record_length) AS bytes
FROM r LEFT JOIN pg_class c ON c.relfilenode = r.relfile
GROUP BY 1 ORDER BY 3 DESC LIMIT %(top)s
"""


def measure(name: str, salons: int, n: int, scripts: list[str], head: str, by_relation: int) -> None:
    with scratch_database(name) as url:
        prepare(url, salons, name not in ("bare", "reference"), reference=name == "reference", head=head)
        with psycopg.connect(url, autocommit=True) as conn:
            db = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            conn.execute(f"ALTER DATABASE \"{db}\" SET pg_stat_statements.track = 'all'")  # type: ignore[arg-type]
            conn.execute("CHECKPOINT")
            conn.execute("SELECT pg_stat_statements_reset()")
            start = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        files = [arg for s in scripts for arg in ("-f", s)]
        cmd = [str(PG_BINDIR / "pgbench"), "-n", "-c", "1", "-t", str(n), "--random-seed", "7", *files, url]
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0 or "aborted" in run.stdout + run.stderr:
            raise SystemExit(f"pgbench run failed:\n{run.stdout}{run.stderr}")
        with psycopg.connect(url, autocommit=True) as conn:
            end = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
            nested = conn.execute(
                "SELECT coalesce(sum(calls) FILTER (WHERE NOT toplevel), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()[0]  # type: ignore[index]
            wal = conn.execute("SELECT %s::pg_lsn - %s::pg_lsn", [end, start]).fetchone()[0]  # type: ignore[index]
            print(f"{name:10} {float(nested) / n:6.2f} nested statements/transaction   {float(wal) / n:7.0f} WAL B/transaction",
                  flush=True)  # fmt: skip
            if by_relation:
                rows = conn.execute(BY_RELATION, {"start": start, "end": end, "top": by_relation}).fetchall()
                for what, records, size in rows:
                    print(f"    {what:58} {records / n:5.2f} records {float(size) / n:7.1f} B")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--salons", type=int, default=20)
    ap.add_argument("--transactions", type=int, default=3000)
    ap.add_argument("--before", metavar="REVISION", help="also the layer at an older revision, e.g. 0024")
    ap.add_argument("--by-relation", type=int, default=0, metavar="N", help="the N relations that write most WAL")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "book.sql").write_text(BOOK.format(salons=args.salons))
        (Path(tmp) / "move.sql").write_text(MOVE.format(window=2000))
        scripts = [f"{tmp}/book.sql@7", f"{tmp}/move.sql@3"]
        variants = [("bare", "heads"), ("reference", "heads"), ("layer", "heads")]
        if args.before:
            variants.append((f"at_{args.before}", args.before))
        print(f"one client, {args.transactions} transactions each, seed 7 (70 % book incl. 20 % composite, 30 % move)")
        for name, head in variants:
            measure(name, args.salons, args.transactions, scripts, head, args.by_relation)


if __name__ == "__main__":
    main()
