"""Create the calsync schema: settings, the integrity-issues register and the pre-flight check.

Revision ID: 0002
Revises: 0001

Adds objects only (and one catalog-only column); nothing existing is rewritten or refused.
- ``btree_gist`` (for the host busy-time exclusion rule of a later revision), unless it is there
  already; the downgrade drops it only if this revision created it.
- ``calsync.settings``: key/value settings the rules read (placeholder e-mail domain, …).
- ``calsync.integrity_issues``: rows that break a rule and are known: old violators listed by a
  pre-flight in new-rows-only mode, composite appointments whose phases could not be derived, and
  anything the remediation runbook resolves. Rows are resolved, never deleted.
- ``calsync.preflight(...)``: the pre-flight every rule revision runs (see migrations/online.py).
- Pure functions and a view the rules, the worker and the remediation runbook share, so that the
  runbook works on a database that has not taken the rules yet: contact checks
  (``is_usable_email``, ``is_usable_phone``, ``placeholder_email``), phase derivation from segments
  (``segment_duration``, ``segments_problem``, ``derive_phases``, ``create_missing_phases``), ``host_key``
  and the view ``appointment_busy_intervals`` (staff-required time of live appointments).
- ``customers.email_is_placeholder`` (boolean, default false: a catalog-only change under a brief,
  retried lock), which the placeholder rule and the runbook's backfill set.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["schema"])
    online.ddl(
        "ALTER TABLE customers ADD COLUMN email_is_placeholder boolean NOT NULL DEFAULT false",
        "COMMENT ON COLUMN customers.email_is_placeholder IS "
        "'true while email is calsync''s customer_<id>@<domain> placeholder, not a real address'",
    )
    op.execute(FROZEN["functions"])
    op.execute(FROZEN["views"])


def downgrade() -> None:
    online.begin_revision()
    op.execute("DROP SCHEMA calsync CASCADE")
    online.ddl("ALTER TABLE customers DROP COLUMN email_is_placeholder")
    op.execute(FROZEN["drop_btree_gist_if_ours"])
