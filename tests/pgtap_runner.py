"""Run one pgTAP file with psql inside a transaction that is always rolled back, and judge its TAP.

psql runs ``BEGIN``, the file, then ``ROLLBACK`` in one session with ON_ERROR_STOP, so meta-commands
work, an SQL error stops the file and fails it (with psql's file:line message), and nothing the file
does survives. A file passes only if psql succeeded, it printed a plan, every planned test ran, and none
failed. The TAP text (descriptions and have/want diagnostics) is the failure message.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PSQL = str(Path(os.environ.get("CALSYNC_PG_BINDIR", "/usr/lib/postgresql/15/bin")) / "psql")
_PLAN = re.compile(r"^1\.\.(\d+)", re.MULTILINE)
_RESULT = re.compile(r"^(not ok|ok) (\d+)", re.MULTILINE)


@dataclass
class TapResult:
    path: Path
    returncode: int
    output: str
    errors: str
    planned: int | None = None
    passed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        if self.returncode != 0:
            out.append(f"psql exited with {self.returncode} (SQL error): {self.errors.strip()}")
        if self.planned is None:
            out.append("no plan: the file must call plan(n)")
        elif self.planned != len(self.passed) + len(self.failed):
            out.append(f"bad plan: planned {self.planned}, ran {len(self.passed) + len(self.failed)}")
        if self.failed:
            out.append(f"failed tests: {self.failed}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        return f"{self.path.name}: " + "; ".join(self.problems) + "\n--- TAP ---\n" + self.output + self.errors


def run_file(path: Path, *, host: str, port: int, user: str, dbname: str) -> TapResult:
    proc = subprocess.run(
        [
            PSQL,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            user,
            "-d",
            dbname,
            "-c",
            "BEGIN",
            "-f",
            str(path),
            "-c",
            "ROLLBACK",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"},
    )
    result = TapResult(path, proc.returncode, proc.stdout, proc.stderr)
    if m := _PLAN.search(proc.stdout):
        result.planned = int(m.group(1))
    for verdict, number in _RESULT.findall(proc.stdout):
        (result.passed if verdict == "ok" else result.failed).append(int(number))
    return result
