"""One live appointment per Cal.com booking, and one phase per Cal.com booking.

Revision ID: 0010
Revises: 0009

Partial unique indexes, built CONCURRENTLY after a pre-flight (see 0009 for the mechanics):
- ``appointments_one_live_per_calcom_booking_id`` on ``calcom_booking_id`` (the numeric id the incident's
  #753-#755 shared: 13060966) and ``appointments_one_live_per_calcom_booking_uid`` on
  ``calcom_v2_booking_uid``, each over live appointments with the id set. ``calcom_v2_booking_id``
  already has the app's stricter ``appointments_calcom_v2_booking_id_unique`` over all rows.
- ``appointment_phases_one_per_calcom_booking_id`` and ``…_uid``: a phase's Cal.com booking belongs to
  that phase alone. Phases have no status of their own, so these cover every phase with the id set.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LIVE = "status NOT IN ('cancelled', 'no_show')"
HAS_BOOKING_FIRST = "(calcom_sync_status <> 'synced'), id"
RULES = [
    (
        "appointments_one_live_per_calcom_booking_id",
        "appointments",
        "calcom_booking_id",
        f"calcom_booking_id IS NOT NULL AND {LIVE}",
        HAS_BOOKING_FIRST,
    ),
    (
        "appointments_one_live_per_calcom_booking_uid",
        "appointments",
        "calcom_v2_booking_uid",
        f"calcom_v2_booking_uid IS NOT NULL AND {LIVE}",
        HAS_BOOKING_FIRST,
    ),
    (
        "appointment_phases_one_per_calcom_booking_id",
        "appointment_phases",
        "calcom_booking_id",
        "calcom_booking_id IS NOT NULL",
        "id",
    ),
    (
        "appointment_phases_one_per_calcom_booking_uid",
        "appointment_phases",
        "calcom_booking_uid",
        "calcom_booking_uid IS NOT NULL",
        "id",
    ),
]


UNIQUE_RULES = [
    online.UniqueRule(
        name=name,
        table=table,
        columns=column,
        where=where,
        keep_first=keep_first,
        description=f"one {'live appointment' if table == 'appointments' else 'phase'} per Cal.com {column}",
        fix=f"Several rows claim one Cal.com booking: keep the one that owns it and cancel (or clear {column} on) "
        f"the others. Find them with: SELECT {column}, array_agg(id ORDER BY id) FROM {table} WHERE {where} "
        "GROUP BY 1 HAVING count(*) > 1;",
    )
    for name, table, column, where, keep_first in RULES
]
PREFLIGHT = [r.check for r in UNIQUE_RULES]


def upgrade() -> None:
    online.begin_revision()
    for rule in UNIQUE_RULES:
        online.unique_rule(revision, rule)
        op.execute(
            f"COMMENT ON INDEX {rule.name} IS 'One {rule.table} row per Cal.com booking ({rule.columns}): a second "
            "row pointing at the same booking is a duplicate; cancel it or clear its booking id.'"
        )


def downgrade() -> None:
    online.begin_revision()
    for name, *_ in RULES:
        online.drop_index_concurrently(name)
    online.resolve_issues_of([r[0] for r in RULES], revision)
