"""The typed contract between the worker and the database; every sync status decided in SQL, once.

Revision ID: 0014
Revises: 0013

- Composite types for what the worker reads (``calsync.appointment_sync_state`` and its parts, returned by the
  new ``calsync.appointment_sync_state(ids)``) and what it reports (``calsync.sync_result`` and its parts, read
  by ``calsync.finish_sync_events`` with ``jsonb_populate_recordset``). The Python twins are in
  worker/sync/contract.py; tests/test_contract.py fails when the two disagree.
- ``calsync.finish_sync_events`` takes facts only and derives every status: the event's outcome by the new
  ``calsync.sync_outcome`` from ``remediation.categories.retryable`` and the attempts (it was decided in Python
  before), the appointment's and its phases' Cal.com columns and sync status from the bookings Cal.com has.
  It returns each event's recorded outcome, so the worker logs what the database recorded. Its return type
  changes, so it is dropped and created again (with its grants) in one transaction.
- ``calsync.sync_attempts`` gets ``response_size`` and ``response_truncated`` (nullable columns: catalog only).
- Two categories: MALFORMED_RESPONSE (a 2xx without a usable booking) and REDIRECTED (a 3xx).
- ``calsync.backfill_placeholder_emails`` (one batch of revision 0006's backfill) becomes
  ``calsync.placeholder_email_backfill_batch``: the runbook step ``remediation.backfill_placeholder_emails`` keeps its name.

**Breaks running code:** a worker of an older version cannot record results after this revision (its results
have the old shape). Stop the workers, migrate, start the new version (the worker refuses to start on a database
that is not at its head revision, so an old one cannot start afterwards by mistake). Nothing is lost meanwhile:
events wait in the outbox, and an event whose result could not be recorded is retried after its lease.
Downgrade restores revision 0013's finish_sync_events and drops the types and the two columns (the archived
sizes go; the archive rows stay). The two category rows stay (older code ignores them).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["types"])
    op.execute(FROZEN["functions"])
    op.execute(FROZEN["categories"])
    op.execute(FROZEN["rename"])
    online.ddl(FROZEN["columns"], FROZEN["drop_finish"], FROZEN["finish"], FROZEN["grants"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(
        FROZEN["drop_finish"],
        FROZEN["previous_finish"],
        FROZEN["grants"],
        "ALTER TABLE calsync.sync_attempts DROP COLUMN response_size, DROP COLUMN response_truncated",
    )
    op.execute(FROZEN["rename_back"])
    op.execute(FROZEN["drop"])
