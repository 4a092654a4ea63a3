"""No double booking of a host: a busy-time table under an EXCLUDE constraint, kept by triggers.

Revision ID: 0012
Revises: 0011

The rule: a host's staff-required time can't overlap another live appointment's staff-required time.
Staff-required time is an appointment's phases with staff_required when it has phases, else
[starts_at, ends_at) (``calsync.appointment_busy_intervals``), so processing gaps stay free and two perms
can interleave. The host is the Cal.com user when the staff row has one, else the staff row: the
incident's #750 and #751 were one person booked twice under two staff rows.

Why a separate table. PostgreSQL has no online way to add an EXCLUDE constraint to a big table: it can't
be NOT VALID and can't be built USING INDEX, so ``ALTER TABLE appointments ADD EXCLUDE …`` holds ACCESS
EXCLUSIVE for the whole GiST build and check (minutes on 1,000,000 rows, every write blocked). Instead:
1. ``calsync.host_busy_time`` (appointment_id, phase_id, staff_id, host_key, busy) is created empty with
   ``host_busy_time_no_overlap EXCLUDE USING gist (host_key WITH =, busy WITH &&)``: instant.
2. Triggers keep it current from here on (appointments insert/update, phases insert/update/delete per
   statement, staff changing Cal.com user; composite appointments at commit, after their phases are
   derived). Creating each takes a brief SHARE ROW EXCLUSIVE lock, under lock_timeout with retries.
   The refresh names the conflicting booking in its error (SQLSTATE 23P01, constraint
   host_busy_time_no_overlap); the EXCLUDE constraint remains the guarantee under concurrency: of many
   concurrent bookings of one slot exactly one commits.
3. Existing appointments are backfilled in batches of ``CALSYNC_BUSY_BATCH_SIZE`` (1,000), each a short
   transaction that locks its rows FOR SHARE (a writer of those rows waits for that batch only).
So writes are blocked at most for one lock_timeout per trigger creation, never for the build.

Pre-flight: existing overlaps stop the revision with a report (the later booking of each overlap), or
in new-rows-only mode are listed in calsync.integrity_issues and left out of the busy table. A booking
made during the backfill that overlaps a not-yet-backfilled older one is listed the same way.
"""

from __future__ import annotations

from migrations import online

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)
RULE = "host_busy_time_no_overlap"

PREFLIGHT = [
    online.Check(
        rule=RULE,
        table="appointments",
        description="a host's staff-required time doesn't overlap another live appointment's",
        violators="SELECT DISTINCT ON (appointment_id) appointment_id AS id, "
        "format('host %s busy %s overlaps appointment #%s', host_key, busy, earlier[2]) AS detail FROM ("
        "SELECT i.*, max(ARRAY[extract(epoch FROM upper(i.busy)), i.appointment_id::numeric]) OVER ("
        "PARTITION BY i.host_key ORDER BY lower(i.busy), i.appointment_id "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier "
        "FROM calsync.appointment_busy_intervals i) AS s "
        "WHERE earlier[1] > extract(epoch FROM lower(busy)) AND earlier[2] <> appointment_id "
        "ORDER BY appointment_id",
        fix="Reschedule or cancel one booking of each overlap (the incident's #750/#751 were one person on two "
        "staff rows). List the overlaps with: SELECT a.appointment_id, b.appointment_id, a.host_key, a.busy, b.busy "
        "FROM calsync.appointment_busy_intervals a JOIN calsync.appointment_busy_intervals b "
        "ON a.host_key = b.host_key AND a.busy && b.busy AND a.appointment_id < b.appointment_id;",
    ),
]


def upgrade() -> None:
    online.begin_revision()
    online.preflight(revision, PREFLIGHT)
    online.ddl(
        FROZEN["table"],
        FROZEN["comments"],
        FROZEN["functions"],
        FROZEN["trigger_appointments"],
        FROZEN["trigger_appointments_at_commit"],
        FROZEN["trigger_phases"],
        FROZEN["trigger_staff"],
    )
    # 1,000 appointments a batch: a batch locks its rows FOR SHARE for ~0.2 s, so a writer waits at most that
    online.batches(
        "calsync.backfill_host_busy_time",
        what="host busy time",
        size=int(online.setting("CALSYNC_BUSY_BATCH_SIZE", "1000")),
    )


def downgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["drop_triggers"], FROZEN["drop_functions"], "DROP TABLE calsync.host_busy_time")
    online.resolve_issues_of([RULE], revision)
