"""Cal.com's webhooks in: every delivery kept, applied exactly once, refused changes recorded.

Revision ID: 0021
Revises: 0020

- ``calsync.webhook_event`` (the typed record the receiver passes, worker/webhooks/contract.py) and
  ``calsync.webhook_deliveries``: every authentic delivery (raw body, headers without secrets, received time,
  outcome); the first delivery of an event is unique (``webhook_deliveries_one_first_delivery_per_event``), a
  redelivery is its own row pointing at it.
- ``calsync.foreign_calcom_bookings``: Cal.com bookings without an appointment (listed, not imported).
- ``calsync.receive_webhook`` stores and applies one delivery (``apply_webhook``, ``apply_calcom_cancel``,
  ``apply_calcom_reschedule``, ``list_calcom_booking``); parked deliveries are retried by
  ``retry_parked_webhooks``; refused and lost changes become integrity issues
  (``record_refused_calcom_change``).
- ``remediation.calcom_bookings_without_appointment`` and ``remediation.refused_calcom_changes``.
- Settings ``webhook_park_base``, ``webhook_park_cap``, ``webhook_park_max``.
- The loop guard (``calsync.is_sync_loop`` and the two enqueue triggers' functions): a change applied from Cal.com
  (``calsync.writer = 'calcom'``, set by the apply functions) or a write that marks the row ``sync_origin =
  'calcom'`` is not synced back; a later change of the app to such a row is (it used to be dropped for ever).
New objects (new empty tables, new functions and views, rows in calsync.settings), and CREATE OR REPLACE of the
loop guard's functions and triggers under lock_timeout with retries: nothing existing is rewritten. Downgrade restores the loop guard of 0018 and drops the rest (the deliveries are dropped with their table: downgrade only before use).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["contract"])
    op.execute(FROZEN["tables"])
    op.execute(FROZEN["settings"])
    op.execute(FROZEN["functions"])
    op.execute(FROZEN["views"])
    op.execute(FROZEN["grants"])
    online.ddl(FROZEN["loop_guard"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["previous_loop_guard"])
    op.execute(FROZEN["drop"])
