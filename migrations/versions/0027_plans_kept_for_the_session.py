"""Plans kept for the session: three SQL functions become PL/pgSQL (the webhook receiver's tail, issue 12).

Revision ID: 0027
Revises: 0026

A SQL function with a SET clause (``search_path``) is never inlined, and PostgreSQL 15 plans its body again in
every transaction that calls it (on every call, from a trigger's PERFORM); PL/pgSQL keeps its plans for the
session. Measured on the webhook bench's database (bench/webhooks.py):
- ``remediation.diagnose_failures``: planning ``remediation.sync_diagnosis`` took 14 ms, running it under 2 ms
  (11.2 ms a call before, 0.7 ms after). The appointments' diagnose trigger calls it on every UPDATE that flags
  an appointment: a webhook's conflict or refusal held its whole batch of deliveries (and their rows) 14 ms
  longer, and 63 conflicts took 8 % of the receiver's database time.
- ``calsync.calcom_change_blocker`` (every Cal.com cancel and reschedule) and ``calsync.webhook_setting`` (three
  calls per parked delivery): 0.35-0.8 ms and 0.25 ms of planning per transaction, for a run of a few µs.
Deploy: three functions replaced in one short unit under lock_timeout with retries (no table is locked,
scanned or rewritten). Downgrade restores the SQL definitions (revisions 0021 and 0005).
"""

from __future__ import annotations

from migrations import online

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["functions"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["previous_functions"])
