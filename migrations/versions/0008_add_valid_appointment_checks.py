"""Valid appointments: a service, an end after the start, known statuses, is_composite from the service.

Revision ID: 0008
Revises: 0007

Rules (CHECK constraints, named for what they require):
- ``appointments_service_required``: a live appointment (status not cancelled/no_show) has a service
  (the incident's #15 had none and failed forever).
- ``appointments_ends_after_start``: a live appointment has ``ends_at`` and it is after ``starts_at``.
- ``appointments_status_known``: status is one of the app's: pending, confirmed, scheduled, booked,
  in_progress, completed, cancelled, no_show.
- ``appointments_calcom_sync_status_known``: calcom_sync_status is one of synced, pending, failed,
  orphaned_local, orphaned_calcom, verification_pending (the app's saga wrote 'error' and
  'manual_review_required', which its ENUM never had).
- ``appointments_composite_matches_service`` (trigger): is_composite is taken from the service on insert
  and on a service change; an update that contradicts the service is refused (23514).

Deploy safety: the pre-flight looks for existing violators first. Each CHECK is added NOT VALID (a
brief ACCESS EXCLUSIVE lock, no scan, retried on lock timeout) and then VALIDATEd in a separate
transaction, which scans under SHARE UPDATE EXCLUSIVE and does not block reads or writes. In
new-rows-only mode a constraint with listed violators stays NOT VALID: it covers new and updated rows.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)
LIVE = "status NOT IN ('cancelled', 'no_show')"
STATUSES = "'pending', 'confirmed', 'scheduled', 'booked', 'in_progress', 'completed', 'cancelled', 'no_show'"
SYNC_STATUSES = "'synced', 'pending', 'failed', 'orphaned_local', 'orphaned_calcom', 'verification_pending'"

CHECKS: dict[str, str] = {
    "appointments_service_required": f"service_id IS NOT NULL OR NOT ({LIVE})",
    "appointments_ends_after_start": f"(ends_at IS NOT NULL AND ends_at > starts_at) OR NOT ({LIVE})",
    "appointments_status_known": f"status IN ({STATUSES})",
    "appointments_calcom_sync_status_known": f"calcom_sync_status IN ({SYNC_STATUSES})",
}

PREFLIGHT = [
    online.Check(
        rule="appointments_service_required",
        table="appointments",
        description="a live appointment needs a service",
        violators=f"SELECT id, 'live appointment without a service, status ' || status AS detail "
        f"FROM appointments WHERE service_id IS NULL AND {LIVE}",
        fix="Cancel them or give them their service. Find them with: "
        f"SELECT id, customer_id, starts_at, status FROM appointments WHERE service_id IS NULL AND {LIVE};",
    ),
    online.Check(
        rule="appointments_ends_after_start",
        table="appointments",
        description="a live appointment ends after it starts",
        violators="SELECT id, 'ends_at ' || coalesce(ends_at::text, 'missing') || ', starts_at ' || starts_at "
        f"AS detail FROM appointments WHERE (ends_at IS NULL OR ends_at <= starts_at) AND {LIVE}",
        fix="Set ends_at from the service's duration, e.g. UPDATE appointments a SET ends_at = a.starts_at + "
        "make_interval(mins => s.duration_minutes) FROM services s WHERE s.id = a.service_id AND "
        f"(a.ends_at IS NULL OR a.ends_at <= a.starts_at) AND a.{LIVE};",
    ),
    online.Check(
        rule="appointments_status_known",
        table="appointments",
        description="status is one of the app's statuses",
        violators=f"SELECT id, 'unknown status ' || quote_literal(status) AS detail FROM appointments "
        f"WHERE status NOT IN ({STATUSES})",
        fix=f"Map them to one of ({STATUSES}). Find them with: SELECT status, count(*) FROM appointments "
        f"WHERE status NOT IN ({STATUSES}) GROUP BY status;",
    ),
    online.Check(
        rule="appointments_calcom_sync_status_known",
        table="appointments",
        description="calcom_sync_status is one of the app's sync statuses",
        violators="SELECT id, 'unknown calcom_sync_status ' || quote_literal(calcom_sync_status) AS detail "
        f"FROM appointments WHERE calcom_sync_status NOT IN ({SYNC_STATUSES})",
        fix="The app's saga wrote 'error' (use 'failed') and 'manual_review_required' (use 'failed' with "
        "requires_manual_review = true). Find them with: SELECT calcom_sync_status, count(*) FROM appointments "
        f"WHERE calcom_sync_status NOT IN ({SYNC_STATUSES}) GROUP BY 1;",
    ),
    online.Check(
        rule="appointments_composite_matches_service",
        table="appointments",
        description="is_composite agrees with the service",
        violators="SELECT a.id, 'is_composite ' || a.is_composite || ' but service ' || s.id || ' composite ' "
        "|| s.composite AS detail FROM appointments a JOIN services s ON s.id = a.service_id "
        "WHERE a.is_composite <> s.composite",
        fix="Copy the flag from the service: UPDATE appointments a SET is_composite = s.composite FROM services s "
        "WHERE s.id = a.service_id AND a.is_composite <> s.composite;",
    ),
]


def upgrade() -> None:
    online.begin_revision()
    online.preflight(revision, PREFLIGHT)
    op.execute(FROZEN["functions"])
    online.ddl(
        FROZEN["trigger"],
        "ALTER TABLE appointments "
        + ", ".join(f"ADD CONSTRAINT {name} CHECK ({expr}) NOT VALID" for name, expr in CHECKS.items()),
        FROZEN["comments"],
    )
    for name in CHECKS:
        online.validate_unless_open_issues("appointments", name)


def downgrade() -> None:
    online.begin_revision()
    online.ddl(
        "ALTER TABLE appointments " + ", ".join(f"DROP CONSTRAINT {name}" for name in CHECKS),
        "DROP TRIGGER appointments_composite_matches_service ON appointments",
    )
    op.execute("DROP FUNCTION calsync.tg_appointments__match_composite()")
    op.execute(
        "UPDATE calsync.integrity_issues SET resolved_at = now(), resolved_by = 'downgrade of 0008', "
        "resolution = 'rule removed' WHERE resolved_at IS NULL AND rule IN ("
        + ", ".join(f"'{r.rule}'" for r in PREFLIGHT)
        + ")"
    )
