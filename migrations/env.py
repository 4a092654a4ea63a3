"""Alembic environment for calsync.

- The URL comes from CALSYNC_DATABASE_URL, else DATABASE_URL (a plain ``postgresql://`` URL is
  switched to the psycopg 3 driver), unless a caller hands a connection or engine in
  ``config.attributes["connection"]`` (tests, ``calsync migrate``).
- Every revision runs in its own transaction (``transaction_per_migration=True``), so a revision
  may leave its transaction with ``op.get_context().autocommit_block()`` for CONCURRENTLY builds and
  batched backfills without holding the locks of the revisions before it.
- Offline mode (``alembic upgrade head --sql``) renders the SQL for review before a deploy.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, Engine

config = context.config


def database_url() -> str:
    url = (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("CALSYNC_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise SystemExit(
            "calsync: no database URL. Set CALSYNC_DATABASE_URL (or DATABASE_URL), "
            "or use `calsync migrate`, which defaults to the embedded database."
        )
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=None,
        literal_binds=True,
        transaction_per_migration=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    engine: Engine = given if isinstance(given, Engine) else create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
