"""A refused key pauses its syncs instead of failing each appointment; event type lengths and recurring types named.

Revision ID: 0017
Revises: 0015

- ``remediation.categories.scope``: ``key`` for AUTH, REDIRECTED and the new ROUTE_NOT_FOUND (a 404 on a route:
  the base URL is wrong). ``calsync.sync_outcome`` gives such an attempt the outcome ``paused``: not counted as an
  attempt, the event due again at once; the worker stops claiming until a probe of the key succeeds.
- ``calsync.key_problems`` (new, empty) with ``calsync.report_key_problem`` / ``calsync.clear_key_problem``:
  the worker reports a refused key once, ``remediation.sync_health`` shows it as a critical alert until it works.
- The contract's ``calsync.sync_result`` gets ``phone_findings`` (``calsync.sync_phone_finding``): phones the worker
  found Cal.com would refuse (libphonenumber), recorded by finish_sync_events as data-quality findings
  (``calsync.record_contact_finding``, revision 0015), fine ones resolving theirs.
- Categories EVENT_TYPE_LENGTH (no length of the event type is the appointment's: configuration drift) and
  RECURRING_EVENT_TYPE (the event type books a series).
New objects and a column with a constant default on a twenty-row table: catalog-only, under lock_timeout.
Downgrade restores revision 0016's definitions (the frozen copies of 0014's) and drops what this one added.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["table"], FROZEN["categories"])
    op.execute(FROZEN["category_rows"])
    op.execute(FROZEN["contract"])
    op.execute(FROZEN["functions"])
    online.ddl(FROZEN["view"], FROZEN["grants"])


def downgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["previous_functions"])
    online.ddl(FROZEN["previous_view"])
    op.execute(FROZEN["drop"])
