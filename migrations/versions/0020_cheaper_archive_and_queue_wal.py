"""A cheaper archive of exchanges, nothing hidden, and time-ordered outbox ids.

Revision ID: 0020
Revises: 0019

What each delivered event writes to the WAL, not what is kept of a failure, changes:
- ``calsync.finish_sync_events`` archives a failed exchange in full as before (request, status, headers and
  body as the worker capped it, with ``response_size`` the size Cal.com sent and ``response_truncated``), and a
  successful one (95 % of them) as what traces it: status, Cal.com's ``x-request-id``, the booking's uid (new
  column ``booking_uid``: the response's ``data.uid``, else the path's, by ``calsync.exchange_booking_uid``),
  latency and sizes (``response_size``, new ``request_size``). Its bodies and other headers are kept only when
  the new setting ``archive_success_bodies`` (calsync.settings) is ``true``; ``bodies_kept`` says which, so an
  empty body is never mistaken for what Cal.com said. A full row was ~1.85 KB, under PostgreSQL's 2 KB
  compression threshold (never compressed); a traced success is ~0.2 KB.
- ``calsync.outbox.id`` defaults to ``calsync.time_ordered_uuid()`` (version-7 layout: milliseconds first)
  instead of ``gen_random_uuid()``: new ids, and the delivery rows keyed by them, land on the same primary-key
  pages instead of random ones, each of which costs a full-page image after a checkpoint.
Deploy: three nullable columns without a default and a new column default (catalog only, a brief ACCESS
EXCLUSIVE lock on calsync.sync_attempts and calsync.outbox under lock_timeout with retries), one settings
row, and CREATE OR REPLACE FUNCTION. Rows already archived are left as they are; existing outbox ids stay.
Downgrade restores the previous default and function and drops the three columns with their values (the
uids and request sizes of successes archived meanwhile; their status, request id and latency stay).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["time_ordered_uuid"])
    online.ddl(FROZEN["columns"])
    op.execute(FROZEN["settings"])
    op.execute(FROZEN["functions"])


def downgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["previous_functions"])
    online.ddl(FROZEN["previous_default"], FROZEN["drop"])
