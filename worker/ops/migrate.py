"""Alembic wrappers: `calsync migrate`, head checks, offline SQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, Engine

from worker.db import libpq_url
from worker.ops import head
from worker.resources import ALEMBIC_INI, MIGRATIONS_DIR


def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + libpq_url(url).split("://", 1)[1]


class ForeignMigrationsPackage(RuntimeError):
    pass


def _check_migrations_package() -> None:
    """Revisions do ``from migrations import online``. alembic.ini's ``prepend_sys_path`` (``%(here)s``) puts the
    directory holding our ``migrations`` first on sys.path, which decides it unless a ``migrations`` package was
    imported before (another project's, or another copy of calsync's): then refuse rather than run revisions
    against the wrong helpers."""
    loaded = sys.modules.get("migrations")
    if loaded is None:
        return
    where = [str(Path(p).resolve()) for p in getattr(loaded, "__path__", [])]
    if str(MIGRATIONS_DIR.resolve()) not in where:
        raise ForeignMigrationsPackage(
            f"a different `migrations` package is already imported (from {where or loaded!r}); calsync's revisions "
            f"need {MIGRATIONS_DIR}: run calsync's migrations in a process of their own"
        )


def alembic_config(url: str | None = None) -> Config:
    """The configuration of the migrations this code ships: alembic.ini from the wheel's bundle or the checkout
    (worker/resources.py), whose paths are relative to the file itself."""
    _check_migrations_package()
    cfg = Config(str(ALEMBIC_INI))
    if url:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(url: str, target: str = "heads", *, sql: bool = False) -> None:
    command.upgrade(alembic_config(url), target, sql=sql)


def downgrade(url: str, target: str) -> None:
    command.downgrade(alembic_config(url), target)


def stamp(url: str, target: str) -> None:
    command.stamp(alembic_config(url), target)


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def code_heads() -> set[str]:
    return set(script().get_heads())


def database_heads(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def current_heads(url: str) -> set[str]:
    with engine_for(url) as engine, engine.connect() as conn:
        return database_heads(conn)


# the head check without Alembic (worker start-up); kept here under their old names for the operator commands
NotAtHead = head.NotAtHead
require_head = head.require_head
