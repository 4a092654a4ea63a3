"""Every revision's SQL passes squawk (each linted alone, as squawk under-reports whole-history dumps)."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from worker.ops import migrate
from worker.resources import ROOT

REVISIONS = [
    (r.down_revision, r.revision)
    for r in migrate.script().walk_revisions("base", "heads")
    if r.down_revision is not None and isinstance(r.down_revision, str)
]
SQUAWK = shutil.which("squawk", path=str(Path(sys.executable).parent)) or "squawk"


def offline_sql(prev: str, rev: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        migrate.upgrade("postgresql://offline/calsync", f"{prev}:{rev}", sql=True)
    return out.getvalue()


@pytest.mark.parametrize(("prev", "rev"), REVISIONS, ids=[r for _, r in REVISIONS])
def test_revision_passes_squawk(prev: str, rev: str) -> None:
    sql = offline_sql(prev, rev)
    proc = subprocess.run(
        [SQUAWK, "--reporter", "gcc", "--stdin-filepath", f"{rev}.sql"],
        input=sql,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, f"squawk findings in revision {rev}:\n{proc.stdout}{proc.stderr}"


def test_squawk_can_fail() -> None:
    proc = subprocess.run(
        [SQUAWK, "--reporter", "gcc", "--stdin-filepath", "bad.sql"],
        input="CREATE INDEX appointments_x ON appointments (status);",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1 and "require-concurrent-index-creation" in proc.stdout
