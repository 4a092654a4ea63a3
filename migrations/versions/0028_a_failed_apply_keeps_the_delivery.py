"""A Cal.com delivery whose apply fails is kept, never answered 500 and lost (found by the webhook bench).

Revision ID: 0028
Revises: 0027

- ``calsync.record_refused_calcom_change`` inserted an open integrity issue for every Cal.com change it kept for a
  person. A second change of the same appointment refused for the same reason (the customer moves the booking
  twice while the app's own change is on its way; two reschedules onto a busy host) broke
  ``integrity_issues_one_open_per_rule_and_row``: the whole delivery was rolled back and the receiver answered
  500, so Cal.com sent it again and again and it was never stored. Found by replaying the webhook bench's
  deliveries on its own database. The second change now joins the open issue (its detail added after the first
  ones, kept to their first 4,000 characters).
- ``calsync.decide_webhook``: any error nobody expected while applying a delivery (a rule the apply functions do
  not catch, a bug like the one above) rolls back the delivery's effects only; the delivery is stored, parked
  with the error in its detail and tried again on the timer. One that still fails after ``webhook_park_max`` is
  refused and recorded on its appointment. Before, such an error failed the receiver's whole call (500, nothing
  stored), and one such delivery among the parked ones failed the timer's transaction on every tick.
- ``calsync.decide_webhook`` no longer looks up a BOOKING_CREATED's appointment when its metadata names none: the
  lookup of NULL was planned as reading nothing, which made the generic plan look dearer, so it was planned again
  on every call (35 µs a delivery in the webhook bench).
Deploy: two functions replaced in one short unit under lock_timeout with retries (no table is locked, scanned or
rewritten). Downgrade restores revision 0021's definitions.
"""

from __future__ import annotations

from migrations import online

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["functions"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["previous_functions"])
