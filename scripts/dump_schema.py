"""Print the normalised schema of a database freshly migrated to head (make schema > tests/schema.sql)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from tests.schema_dump import dump
from worker.db import resolve_url
from worker.ops import migrate


def main() -> None:
    server = resolve_url().rsplit("/", 1)[0]
    name = f"schema_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate.upgrade(f"{server}/{name}", "heads")
        sys.stdout.write(dump(f"{server}/{name}"))
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
