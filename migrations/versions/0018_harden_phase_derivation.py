"""Phase derivation never crashes on what a service's segments hold; savepoints don't enqueue extra reschedules.

Revision ID: 0018
Revises: 0017

Fixes of the property tests' findings (issue 11.7), each a new definition of an existing function:
- ``calsync.segment_number`` reads a segment's number without a cast that can fail; a number beyond integer
  range (a duration, ``order``, ``gap_after``, or the summed durations and gaps, now summed in bigint) makes the
  segments unusable (``calsync.segments_problem`` names it): the booking is flagged (failed, manual review,
  integrity issue) instead of failing at commit with 22003. ``services_keep_segments_while_booked`` no longer
  trips on such numbers either.
- ``staff_required`` that is no boolean literal counts as its default, true (``calsync.segment_flag``), not 22P02.
- Segment keys and names longer than the phase columns are cut (``left()``: key 50, name 255; a gap keeps its
  ``_gap`` and `` (Einwirkzeit)``), not 22001.
- Phases that would end after timestamptz's last instant are refused by the rule
  ``appointment_phases_within_time_range`` (23514), at commit and on a move, not with an unnamed 22008.
- ``services_keep_segments_while_booked`` also refuses a simple service becoming composite while upcoming live
  appointments use it (they were booked without phases and would contradict their service).
- Phases written in the same transaction as their appointment but under a savepoint no longer enqueue a
  reschedule of their own: ``calsync.written_by_this_transaction(xmin)`` knows the whole transaction tree.
Deploy: CREATE OR REPLACE FUNCTION only (no table is locked or rewritten; no trigger changes, so nothing for
online.ddl). A service update that the new rule refuses was accepted before; nothing else that worked changes.
Downgrade restores the previous definitions (the frozen copies of 0002, 0004 and 0011) and drops the new helpers.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["functions"])


def downgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["previous_functions"])
    op.execute(FROZEN["drop"])
