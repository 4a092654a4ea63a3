"""Every tests/pgtap/*.sql file is one pytest item, run in its own fresh clone of the migrated template.

Files in tests/pgtap/before_rules/ run on a clone at the last revision before the integrity rules (0005),
where the data the rules refuse can still exist: the remediation runbook is tested there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Db
from tests.pgtap_runner import run_file

PGTAP_DIR = Path(__file__).parent / "pgtap"
FILES = sorted(PGTAP_DIR.glob("*.sql"))
BEFORE_RULES_FILES = sorted((PGTAP_DIR / "before_rules").glob("*.sql"))


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_pgtap_file(path: Path, db: Db) -> None:
    result = run_file(path, host=db.host, port=db.port, user=db.user, dbname=db.dbname)
    assert result.ok, result.report()


@pytest.mark.parametrize("path", BEFORE_RULES_FILES, ids=[f.stem for f in BEFORE_RULES_FILES])
def test_pgtap_file_before_rules(path: Path, db_before_rules: Db) -> None:
    d = db_before_rules
    result = run_file(path, host=d.host, port=d.port, user=d.user, dbname=d.dbname)
    assert result.ok, result.report()
