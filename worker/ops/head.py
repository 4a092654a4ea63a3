"""Is the database at the migration head this code ships? Answered without importing Alembic.

``calsync worker`` asks this at every start, and importing Alembic and SQLAlchemy to ask it took about half of
the worker's start-up (1.3 s of 2.6 s on this machine). The code's head is read from the revision files (their
``revision`` and ``down_revision`` lines: a revision no other revision names as its ``down_revision``), the
database's from ``alembic_version`` with psycopg. ``tests/test_migrations.py`` checks the answer is Alembic's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import psycopg

from worker.db import libpq_url
from worker.errors import CliError, Exit
from worker.resources import MIGRATIONS_DIR


class NotAtHead(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(f"refusing to start: {message}", Exit.NOT_AT_HEAD)


def _assigned(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"no {name} = … in the revision")


def code_heads(versions: Path = MIGRATIONS_DIR / "versions") -> set[str]:
    """The revisions no other revision builds on, from the revision files' literal assignments."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in versions.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        revisions.add(str(_assigned(tree, "revision")))
        down = _assigned(tree, "down_revision")
        below.update(str(d) for d in (down if isinstance(down, tuple | list) else [down]) if d is not None)
    return revisions - below


def database_heads(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.alembic_version') IS NULL").fetchone() == (True,):
            return set()
        return {str(r[0]) for r in conn.execute("SELECT version_num FROM public.alembic_version")}


def require_head(url: str) -> None:
    """Refuse to run code against a database whose migration head differs from the code's."""
    have, want = database_heads(url), code_heads()
    if have != want:
        raise NotAtHead(
            f"database is at revision {sorted(have) or 'none'}, this code needs {sorted(want)}: "
            "run `calsync migrate` (or `alembic upgrade heads`) first"
        )
