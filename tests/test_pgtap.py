"""Every tests/pgtap/*.sql file is one pytest item, run in its own fresh clone of the migrated template."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Db
from tests.pgtap_runner import run_file

PGTAP_DIR = Path(__file__).parent / "pgtap"
FILES = sorted(PGTAP_DIR.glob("*.sql"))


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_pgtap_file(path: Path, db: Db) -> None:
    result = run_file(path, host=db.host, port=db.port, user=db.user, dbname=db.dbname)
    assert result.ok, result.report()
