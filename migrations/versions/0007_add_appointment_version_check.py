"""Optimistic locking on appointments: version increments on every update; a stale version is refused.

Revision ID: 0007
Revises: 0006

``appointments_version_check`` (BEFORE UPDATE): an UPDATE that sets ``version`` to anything other than
the row's current version was based on a stale read and fails with SQLSTATE 40001
(serialization_failure, so callers' retry logic applies) and a message naming both versions. An UPDATE
that leaves ``version`` out is not checked (the app's background jobs work that way); either way the
trigger sets ``version = old version + 1``. Catalog-only; the trigger takes a brief lock, retried.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["functions"])
    online.ddl(FROZEN["trigger"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl("DROP TRIGGER appointments_version_check ON appointments")
    op.execute("DROP FUNCTION calsync.tg_appointments__check_version()")
