"""Cheaper bookings and moves, same rules: less work per write on appointments and their phases (issue 14).

Revision ID: 0025
Revises: 0024

Measured on the app's booking workload (bench/booking_throughput.py), none of it a rule given up:
- ``remediation_appointments_slot_index`` (revision 0005) is dropped: it indexes the same three columns as the
  unique ``appointments_one_live_per_customer_slot`` (revision 0009), whose partial predicate (live rows) is the
  one ``remediation.shared_bookings`` filters by, so that index serves its lookup; every booking and every move
  wrote both.
- ``appointment_phases_reserve_host_time_update`` becomes a statement trigger over the transition tables the
  outbox's phase trigger captures already: a moved Dauerwelle recomputes its busy time once, not once per
  staff-required phase.
- The appointments' enqueue trigger inserts its outbox event itself, with the row's company, so
  ``outbox_record_company`` (now with a WHEN) runs only for events that come without one.
- ``appointments_composite_has_phases`` checks for phases in one query before calling
  ``calsync.create_missing_phases``.
- ``appointments_phases_follow_appointment`` shifts phases only of an appointment that has some: a simple
  appointment's move runs one index probe instead of an UPDATE of no row and its two statement triggers.
- The webhook receiver's parked deliveries (issue 12): ``calsync.retry_parked_webhooks`` plans its two cases
  as two queries, each on its partial index (the one query with a CASE read every parked row per call), and
  ``calsync.receive_webhook`` calls it only when a parked delivery waits for the booking.
Deploy: functions and triggers are replaced in one short unit under lock_timeout with retries (no table is
rewritten or scanned); the index is dropped CONCURRENTLY. Downgrade restores revision 0024's definitions and
builds the index again CONCURRENTLY.
"""

from __future__ import annotations

from migrations import online

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)

SLOT_INDEX = "remediation_appointments_slot_index"
SLOT_INDEX_SQL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_appointments_slot_index "
    "ON appointments (customer_id, starts_at, service_id)"
)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["triggers"], FROZEN["webhook_functions"])
    online.drop_index_concurrently(SLOT_INDEX)


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["previous_triggers"], FROZEN["previous_webhook_functions"])
    online.concurrent_index(SLOT_INDEX, SLOT_INDEX_SQL)
