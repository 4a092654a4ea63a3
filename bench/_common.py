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


def _backend_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the server processes ``pids`` have used so far (0 for one that has gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def pgbench_cost(url: str, scripts: list[str], clients: int, seconds: int) -> tuple[float, float | None]:
    """tps of a pgbench run, and the server's CPU milliseconds per transaction: the CPU its own backends used
    (read from /proc, so only for a server on this machine; else None) from 1 s after the start to 1 s before
    the end, over the transactions of that window (at the run's tps). CPU per transaction hardly moves with the
    other work on a shared machine; tps does."""
    with psycopg.connect(url, autocommit=True) as conn:
        proc = subprocess.Popen(
            pgbench_command(url, scripts, clients, seconds), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        cpu_s, window = None, 0.0
        if seconds >= 4:
            time.sleep(1.0)
            pids = [
                int(r[0])  # type: ignore[call-overload]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
            if len(pids) >= clients and all(Path(f"/proc/{pid}").exists() for pid in pids):
                c0, t0 = _backend_cpu_s(pids), time.monotonic()
                time.sleep(seconds - 2.0)
                cpu_s, window = _backend_cpu_s(pids) - c0, time.monotonic() - t0
        out, _ = proc.communicate()
    tps = _pgbench_tps(proc.returncode, out)
    return tps, (cpu_s * 1000 / (tps * window) if cpu_s is not None and tps > 0 else None)


def pgbench_command(url: str, scripts: list[str], clients: int, seconds: int) -> list[str]:
    files = [arg for script in scripts for arg in ("-f", script)]
    return [str(PG_BINDIR / "pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), *files, url]


def _pgbench_tps(returncode: int, out: str) -> float:
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if returncode != 0 or not m or (failed and int(failed.group(1)) > 0) or "aborted" in out:
        raise SystemExit(f"pgbench run failed:\n{out}")
    return float(m.group(1))


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
