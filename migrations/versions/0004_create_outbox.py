"""The transactional outbox: sync intents commit with the booking; the worker delivers them exactly once.

Revision ID: 0004
Revises: 0003

Tables (schema calsync):
- ``outbox``: insert-only from the application's side, in the shape Debezium's outbox event router
  expects (``id uuid, aggregatetype, aggregateid, type, payload jsonb``; ``seq`` and ``created_at`` are
  extra columns). The router warns on every UPDATE and ignores DELETEs, so nothing here ever updates
  an outbox row: a larger deployment can relay this table with Debezium and Kafka instead of the worker.
- ``outbox_delivery``: the worker's delivery state, one row per event being worked on, made by the claim
  (not by the application's transaction, which therefore writes one row per event only): status
  (running | retry | dead), attempts, next_attempt_at, locked_by, locked_until, last_error,
  last_category, covers_seq, created_at, processed_at.
- ``sync_attempts``: every HTTP attempt in full (request without the Authorization header, response
  status, headers and body with no length limit, duration, category, worker id). Compressed in line
  (toast_tuple_target 128) to keep its WAL small; a BRIN index on created_at serves time windows.
- ``synced_bookings``: what Cal.com holds per appointment (slot 0) and phase, as the worker last saw it.
- ``outbox_listeners``: workers waiting for work; enqueueing NOTIFYs only while one of them is idle.

Pruning and churn. A delivered event is not kept: its outbox row, every earlier event of the same
appointment it covered, and their delivery rows are deleted in the completion statement (Debezium
ignores deletes; the archive of what was sent is ``sync_attempts``). So each event costs an insert
(app), a delivery insert at claim and two deletes at completion, with no update to bloat the outbox.
Dead events stay for review and are pruned, with old attempts, by ``calsync.prune_sync_history``
(the worker runs it hourly). Autovacuum is tuned tighter on the two queue tables.

Backlog: live upcoming appointments still ``pending`` (the app's sync job had not pushed them) get a
create event when the revision is applied, so the worker takes them over; stop the app's job first.

Triggers: appointments (create, cancel, reschedule; worker-written and Cal.com-originated changes never
enqueue), appointment_phases (phases changed on their own reschedule their appointment), outbox
(statement-level wake-up NOTIFY, only when a worker is idle: NOTIFY serialises committing writers).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["tables"])
    op.execute(FROZEN["functions"])
    online.ddl(FROZEN["trigger_appointments"], FROZEN["trigger_phases"], FROZEN["trigger_outbox"])
    op.execute(FROZEN["adopt_backlog"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["drop_triggers"])
    op.execute(FROZEN["drop"])
