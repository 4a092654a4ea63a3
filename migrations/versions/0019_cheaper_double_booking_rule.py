"""The double-booking rule, cheaper per booking: one busy row per appointment, keyed by a bigint host.

Revision ID: 0019
Revises: 0018

The rule and its guarantee are revision 0012's: ``host_busy_time_no_overlap`` (SQLSTATE 23P01) refuses
any booking whose staff-required time overlaps another live booking of the same host, under any
concurrency, and its DETAIL names the booking in the way. What changes is what each booking costs:
- ``calsync.host_busy_time`` holds one row per live appointment (primary key ``appointment_id``): its
  staff-required time as one ``tstzmultirange`` (its phases that need staff, else its whole time). A
  Dauerwelle with four staff-required phases writes one row, one GiST entry and one btree entry instead
  of four of each, and its move rewrites one row instead of four. Interleaved perms still fit: ``&&`` of
  two multiranges compares their ranges, not their hulls (the index holds the hulls and rechecks).
- The host key is a bigint, ``calsync.host_id()``: the Cal.com user id when the staff row has one (one
  person on two staff rows stays one host), else a negative 63-bit hash of the staff row's id. The text
  key (``calcom_user:<id>``) made every comparison in the GiST index a collation-aware string compare.
  The DETAIL now reads ``(host_id, busy, (appointment_id + 0))=(1414768, {[...)}, 750)``: the constraint
  keys the appointment by an expression so that the planner never takes its GiST index for a lookup by
  appointment_id (revision 0012's did, for a simple move: a scan of the whole index, ~0.35 ms on 20,000
  appointments and growing with the table), only the primary key.
- A changed phase recomputes its appointment's row from a row trigger whose WHEN lets through only
  changes of what decides the busy time: the app's unchanged rewrites of phases, and its phase updates
  that change no row (a simple appointment's move), run none of the rule's queries (the statement
  trigger ran two). A recomputation equal to the stored row writes nothing.
- The staff re-key finds the staff row's busy rows through the constraint's index (old key), not a scan.
The view ``calsync.appointment_busy_intervals`` (one row per interval) stays the definition; the tests
compare the table with it, interval by interval.

Deploy-safe on a live table (1,000,000 appointments: ~1.3 busy rows each before, 1 after):
1. ``calsync.host_busy_time_next`` is created empty with its constraints (instant), and a row trigger on
   the current table makes every write of an appointment's rows recompute its row in the new one (dual
   write). Creating it takes a brief SHARE ROW EXCLUSIVE lock on the busy table, under lock_timeout
   with retries.
2. The existing rows are copied in batches of ``CALSYNC_BUSY_BATCH_SIZE`` appointments (2,000), each a
   short transaction that locks the batch's appointments and busy rows FOR SHARE (a writer of one of
   them waits for that batch only), then deletes and copies in statements that see the committed state.
3. The swap, one unit under lock_timeout with retries: lock appointments, appointment_phases and staff
   (SHARE ROW EXCLUSIVE: writers wait at their first statement, none is half way through a booking),
   then both busy tables; drop the old one, give the new one its name and its constraints', and replace
   the trigger functions' bodies. Writers wait at most one lock_timeout plus the milliseconds it takes.
A pre-flight refuses (CS001) when two hosts would share a key (a Cal.com user id <= 0, or a hash
collision of two staff rows without one).

Downgrade is the same in reverse: revision 0012's table (one row per interval, text key) is created
empty beside this one, dual-written and filled in batches from the view, and swapped back with the
previous function and trigger definitions.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def _copy(batch_function: str, table: str) -> None:
    # 2,000 appointments a batch: a batch locks them FOR SHARE for ~0.1 s, so a writer waits at most that
    online.batches(
        batch_function,
        what="host busy time, one row per appointment",
        size=int(online.setting("CALSYNC_BUSY_BATCH_SIZE", "2000")),
    )
    with op.get_context().autocommit_block():
        op.execute(f"ANALYZE {table}")


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["host_id"], FROZEN["check_host_ids"])
    online.ddl(FROZEN["table_next"], FROZEN["mirror_next"], FROZEN["batch_next"])
    _copy("calsync.host_busy_time_next_batch", "calsync.host_busy_time_next")
    online.ddl(FROZEN["swap"], FROZEN["functions"], FROZEN["triggers"], FROZEN["drop_previous"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["table_prev"], FROZEN["mirror_prev"], FROZEN["batch_prev"])
    _copy("calsync.host_busy_time_prev_batch", "calsync.host_busy_time_prev")
    online.ddl(FROZEN["swap_back"], FROZEN["functions_previous"], FROZEN["triggers_previous"], FROZEN["drop_new"])
