"""Reconciliation with Cal.com: findings recorded, listed with the repair, repaired through the audited runbook.

Revision ID: 0022
Revises: 0021

- ``calsync.reconcile_findings`` (new, empty): what ``calsync reconcile`` found (orphan_at_calcom, orphan_here,
  drift), one open finding per kind and booking (``reconcile_findings_one_open_per_booking``), resolved, never
  deleted; ``remediation.reconcile_findings`` lists the open ones with the recommended action.
- The contract of the command: ``calsync.calcom_booking`` (what Cal.com holds, sent by the command) and
  ``calsync.reconcile_finding`` (what is returned), twins of ``worker/ops/reconcile_contract.py``.
- ``remediation.reconcile_compare`` decides; ``remediation.reconcile_bookings`` records (a dry run records
  nothing); ``remediation.repair_reconcile_findings``, ``remediation.reconcile_cancellations``,
  ``remediation.record_reconcile_cancellation`` repair and log; ``remediation.undo_reconcile`` reverts a repair run;
``remediation.undo`` (new definition) refuses a run with a change it cannot revert instead of marking it undone.
Deploy: new objects only (a new empty table with its index, types, functions and a view): nothing existing is
locked beyond the catalog. Grants follow sql/grants/roles.sql (remediation functions for calsync_remediator only,
the view for calsync_readonly). Downgrade restores 0005's remediation.undo and drops what this revision added (the findings with it).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["table"])
    op.execute(FROZEN["contract"])
    op.execute(FROZEN["functions"])
    op.execute(FROZEN["undo"])
    op.execute(FROZEN["view"])
    op.execute(FROZEN["grants"])


def downgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["previous_undo"])
    op.execute(FROZEN["drop"])
