"""Many companies, many workers: events carry their company, the claim shares out by company, one rate limit per key.

Revision ID: 0023
Revises: 0022

- ``calsync.outbox.company_id`` (new, nullable): the appointment's company, set on insert by the row trigger
  ``outbox_record_company`` (one primary-key lookup per event); events enqueued before this revision get theirs
  from a batched backfill (an UPDATE of the outbox rows: a Debezium connector on the table warns once per row).
  ``outbox_company_id_seq_index`` (built CONCURRENTLY) lets the claim find the companies with work by a skip
  scan and read each company's oldest events.
- ``calsync.claim_sync_events(worker, limit, lease, skip_companies, per_company)``: companies interleaved (every
  company's first event, then every company's second, …), at most ``per_company`` each, the companies the worker
  names left alone (their key is paused, out of slots, or missing), and the company of each event returned. The
  old four-argument claim stays, as a wrapper of the new one, so workers of the previous release keep working
  during a rolling deploy.
- ``calsync.rate_limits`` (new, empty) with ``calsync.take_rate_slots`` / ``calsync.pause_rate_limit``: one
  request schedule per key (``default`` or ``company:<id>``, never the key) shared by every worker process and
  host; ``calsync.rate_limit_stats`` and ``calsync.queue_stats_by_company`` give the figures.
- Category KEY_MISSING (scope key: held, not an attempt); ``remediation.sync_health`` names a company without a
  key in its alert and gets ``companies`` (pending, failed, outbox depth, dead, held, oldest, key problem).
Locks: the new column, trigger and view are catalog-only, under lock_timeout with retries (online.ddl).
Downgrade restores revision 0018's claim and view and drops what this one added.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["table"])
    op.execute(FROZEN["category_rows"])
    op.execute(FROZEN["functions"])
    online.ddl(FROZEN["trigger"], FROZEN["view"], FROZEN["grants"])
    op.execute(FROZEN["backfill_function"])
    online.batches("calsync.backfill_outbox_company_0023", what="outbox events' companies")
    op.execute(FROZEN["drop_backfill_function"])
    online.concurrent_index("calsync.outbox_company_id_seq_index", FROZEN["index"])


def downgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["previous_functions"])
    online.ddl(FROZEN["previous_view"])
    online.drop_index_concurrently("calsync.outbox_company_id_seq_index")
    op.execute(FROZEN["drop"])
