"""A booking the worker cancelled stays forgotten by the appointment's uid columns (the chaos soak's failure).

Revision ID: 0026
Revises: 0025

``calsync.finish_sync_events``:
- took the last *live* booking of a result for the appointment's ``calcom_v2_booking_uid``. An attempt that found
  the booking (a later attempt's discovery), cancelled it for a move that books again (the event type's default
  length is not the salon's) and then failed to create named the cancelled booking again: the statement before
  had cleared it, this one wrote it back. The next attempt took that uid for a booking in place and recorded the
  appointment as synced with nothing booked. The columns now follow the result's last word on the booking.
- cleared the app's uid columns only when they named the cancelled booking. After an outside reschedule they name
  the booking the customer moved away from while the worker cancels its successor: a slot left with no live
  booking (calsync.synced_bookings) now forgets whatever uid the app named for it.
- archived one batch's exchanges in no particular order; their ids now follow the order they were made in.
Deploy: one function replaced under lock_timeout with retries (no table is locked, scanned or rewritten).
Downgrade restores revision 0020's definition.
"""

from __future__ import annotations

from migrations import online

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["functions"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["previous_functions"])
