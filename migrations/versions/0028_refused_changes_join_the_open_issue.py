"""A second refused Cal.com change of an appointment joins the open issue (the webhook receiver stored nothing).

Revision ID: 0028
Revises: 0027

``calsync.record_refused_calcom_change`` inserted an open integrity issue for every Cal.com change it kept for a
person. A second change of the same appointment refused for the same reason (the customer moves the booking
twice while the app's own change is on its way; two reschedules onto a busy host) broke
``integrity_issues_one_open_per_rule_and_row``: the whole delivery was rolled back and the receiver answered 500,
so Cal.com sent it again and again and it was never stored. Found by replaying the webhook bench's deliveries on
its own database. The second change now joins the open issue: its detail is added after the first ones (kept to
their first 4,000 characters), and the delivery is stored with its outcome as every other one.
Deploy: one function replaced under lock_timeout with retries (no table is locked, scanned or rewritten).
Downgrade restores revision 0021's definition.
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
