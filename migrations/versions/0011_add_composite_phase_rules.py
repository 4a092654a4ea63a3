"""Composite appointments have their phases, derived in the database; phases are unique per sequence.

Revision ID: 0011
Revises: 0010

The app's phase observer failed silently (#664, #700, #750 had no phases), doubled phases (12 instead of
6), lost them on reschedule, and its event-type import wiped services' segments. Rules:
- ``appointments_composite_has_phases`` (deferred constraint trigger): at commit, a live composite
  appointment without phases gets them from ``calsync.derive_phases`` (the app's algorithm, plus the
  legacy ``duration``/``gap_after`` shape with gaps as processing phases). With unusable segments it is
  flagged instead: calcom_sync_status failed, requires_manual_review, sync_error_code
  COMPOSITE_FAILURE, and a row in calsync.integrity_issues. A flagged appointment is not synced.
- ``appointments_phases_follow_appointment``: a reschedule shifts the phases; a service change moves the
  old phases to ``calsync.superseded_phases`` (made in 0002) (with their Cal.com bookings, which must be cancelled) and
  the deferred trigger derives the new ones.
- ``appointment_phases_one_per_sequence``: UNIQUE (appointment_id, sequence_order), built CONCURRENTLY
  and attached with ADD CONSTRAINT … USING INDEX; ``appointment_phases_sequence_required`` (CHECK, NOT
  VALID then VALIDATE).
- ``services_keep_segments_while_booked``: a composite service's segments can't be emptied (or
  composite switched off) while upcoming live appointments use it.
Existing live composite appointments without phases are repaired by a batched backfill.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)
UNIQUE = "appointment_phases_one_per_sequence"
SEQUENCE_CHECK = "appointment_phases_sequence_required"

SEQUENCE_PREFLIGHT = online.Check(
    rule=SEQUENCE_CHECK,
    table="appointment_phases",
    description="a phase has a sequence_order",
    violators="SELECT id, 'phase of appointment ' || appointment_id || ' without sequence_order' AS detail "
    "FROM appointment_phases WHERE sequence_order IS NULL",
    fix="These are the app's broken phases (NULL segment fields): supersede them and let calsync derive the "
    "phases again. Find them with: SELECT appointment_id, count(*) FROM appointment_phases "
    "WHERE sequence_order IS NULL GROUP BY 1;",
)


UNIQUE_RULE = online.UniqueRule(
    name=UNIQUE,
    table="appointment_phases",
    columns="appointment_id, sequence_order",
    where=None,
    description="one phase per appointment and sequence_order",
    fix="The app once created 12 phases instead of 6: keep the first of each (appointment_id, sequence_order) "
    "and supersede the others. Find them with: SELECT appointment_id, sequence_order, array_agg(id ORDER BY id) "
    "FROM appointment_phases GROUP BY 1, 2 HAVING count(*) > 1;",
)
PREFLIGHT = [SEQUENCE_PREFLIGHT, UNIQUE_RULE.check]


def upgrade() -> None:
    online.begin_revision()
    online.preflight(revision, [SEQUENCE_PREFLIGHT])
    op.execute(FROZEN["functions"])
    online.ddl(
        FROZEN["trigger_composite_has_phases"],
        FROZEN["trigger_phases_follow_appointment"],
        FROZEN["trigger_keep_segments_while_booked"],
        f"ALTER TABLE appointment_phases ADD CONSTRAINT {SEQUENCE_CHECK} CHECK (sequence_order IS NOT NULL) NOT VALID",
    )
    online.unique_rule(revision, UNIQUE_RULE)
    online.validate_unless_open_issues("appointment_phases", SEQUENCE_CHECK)
    online.batches("calsync.backfill_composite_phases", what="phases of composite appointments")


def downgrade() -> None:
    online.begin_revision()
    online.ddl(
        "DROP TRIGGER appointments_composite_has_phases ON appointments",
        "DROP TRIGGER appointments_phases_follow_appointment ON appointments",
        "DROP TRIGGER services_keep_segments_while_booked ON services",
        f"ALTER TABLE appointment_phases DROP CONSTRAINT {SEQUENCE_CHECK}",
    )
    online.drop_unique_rule("appointment_phases", UNIQUE)
    op.execute(FROZEN["drop"])
    online.resolve_issues_of([UNIQUE, SEQUENCE_CHECK, "appointments_composite_has_phases"], revision)
