"""Shared bits of the bench scripts: a scratch database on the embedded server, timing helpers.

Benchmarks print their figures; they are never timed tests. Comparisons are ratios against a baseline
measured in the same run, because this machine is noisy (2 cores shared with other work).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from worker.devtools.embedded import EmbeddedPostgres  # noqa: E402

PG_BINDIR = Path(os.environ.get("CALSYNC_PG_BINDIR", "/usr/lib/postgresql/15/bin"))


def server_url() -> str:
    """Base URL (no database) of the server to benchmark on: CALSYNC_BENCH_SERVER, else the embedded one."""
    if env := os.environ.get("CALSYNC_BENCH_SERVER"):
        return env.rstrip("/")
    return EmbeddedPostgres().start().url.rsplit("/", 1)[0]


@contextmanager
def scratch_database(prefix: str, keep: bool = False) -> Iterator[str]:
    base = server_url()
    name = f"bench_{prefix}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            with psycopg.connect(base + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def pgbench_tps(url: str, scripts: list[str], clients: int, seconds: int) -> float:
    """tps of a pgbench run (``scripts``: ``-f`` arguments, e.g. ``book.sql@7``); any failed or aborted transaction
    ends the benchmark, since the scripts are built so that nothing is refused."""
    files = [arg for script in scripts for arg in ("-f", script)]
    cmd = [str(PG_BINDIR / "pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), *files, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if proc.returncode != 0 or not m or (failed and int(failed.group(1)) > 0) or "aborted" in out:
        raise SystemExit(f"pgbench run failed:\n{out}")
    return float(m.group(1))
