"""A normalised ``pg_dump --schema-only`` of a database migrated to head (committed as tests/schema.sql).

Every schema change then shows up in review as a diff of that file; ``make schema`` regenerates it and
``tests/test_schema_dump.py`` fails when it is stale.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

PG_DUMP = str(Path(os.environ.get("CALSYNC_PG_BINDIR", "/usr/lib/postgresql/15/bin")) / "pg_dump")
SCHEMA_FILE = Path(__file__).parent / "schema.sql"


def normalise(dump: str) -> str:
    out: list[str] = []
    for line in dump.splitlines():
        if (
            line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict"))
            or not line.strip()
        ):
            continue
        out.append(line.rstrip())
    text = "\n".join(out) + "\n"
    return re.sub(r"\n(?=CREATE|ALTER|COMMENT|GRANT|REVOKE)", "\n\n", text)


def dump(url: str) -> str:
    proc = subprocess.run(
        [
            PG_DUMP,
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=public.alembic_version",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return normalise(proc.stdout)
