"""Remediation: the views DBAs query, the runbook operators run, and the three roles.

Revision ID: 0005
Revises: 0004

It comes before the integrity rules on purpose: a database that the rules' pre-flights refuse is fixed
with this runbook first, so the runbook works on a database that has not taken the rules (it only
needs the calsync schema and the outbox).

- ``remediation.categories``: the failure categories (the incident's OTHER, DOUBLE_BOOKING,
  COMPOSITE_FAILURE, PHASE_ERROR, MISSING_CONTACT and the worker's), with retryability, the
  recommended action and the runbook step that fixes them.
- Views (every column commented): sync_health, error_distribution, failed_syncs, duplicate_bookings,
  past_unsynced, host_conflicts, composites_without_phases, customers_missing_contact,
  appointments_without_service, stuck_outbox, dead_letters, integrity_issues.
- Runbook functions (SECURITY DEFINER, dry run by default, logged in ``remediation.log`` with before and
  after images, idempotent, never deleting; ``remediation.undo(run_id)`` reverts a run), and
  ``remediation.runs`` for the CLI's before/after snapshots.
- ``remediation.failure_diagnoses``: why each failure the app recorded happened, diagnosed from the data
  when it is recorded (trigger ``appointments_diagnose_failure``) and, for the failures already there, by
  a batched backfill after the indexes: the findings read it instead of diagnosing every failure again.
- Partial indexes (built CONCURRENTLY) over the problem rows the views read, so they stay fast on big
  tables.
- Roles: calsync_readonly (SELECT on the views only), calsync_worker (what the worker needs, column by
  column), calsync_remediator (the runbook). Roles are cluster-wide: they are created if missing and,
  on downgrade, dropped only when nothing else in the cluster uses them.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)
INDEXES = {
    "remediation_appointments_failing_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_appointments_failing_index "
    "ON appointments (id) WHERE calcom_sync_status = 'failed' OR requires_manual_review",
    "remediation_appointments_unsynced_ends_at_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS "
    "remediation_appointments_unsynced_ends_at_index ON appointments (ends_at) "
    "WHERE calcom_sync_status IN ('failed', 'pending')",
    "remediation_appointments_last_sync_attempt_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS "
    "remediation_appointments_last_sync_attempt_index ON appointments (last_sync_attempt_at) "
    "INCLUDE (calcom_sync_status) WHERE last_sync_attempt_at IS NOT NULL",
    "remediation_appointments_calcom_uid_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS "
    "remediation_appointments_calcom_uid_index ON appointments (calcom_v2_booking_uid) "
    "WHERE calcom_v2_booking_uid IS NOT NULL",
    "remediation_appointments_slot_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_appointments_slot_index "
    "ON appointments (customer_id, starts_at, service_id)",
    "remediation_staff_host_key_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_staff_host_key_index "
    "ON staff (calsync.host_key(calcom_user_id, id))",
    "remediation_customers_missing_contact_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS "
    "remediation_customers_missing_contact_index ON customers (id) "
    "WHERE NOT calsync.is_usable_email(email) AND NOT calsync.is_usable_phone(phone)",
}


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["schema"])
    op.execute(FROZEN["diagnosis"])
    op.execute(FROZEN["functions"])
    op.execute(FROZEN["views"])
    op.execute(FROZEN["roles"])
    online.ddl(FROZEN["trigger_diagnose"])
    for name, sql in INDEXES.items():
        online.concurrent_index(name, sql)
    online.batches("remediation.backfill_failure_diagnoses", what="failure diagnoses")


def downgrade() -> None:
    online.begin_revision()
    online.ddl("DROP TRIGGER IF EXISTS appointments_diagnose_failure ON appointments")
    for name in INDEXES:
        online.drop_index_concurrently(name)
    op.execute(FROZEN["drop"])
