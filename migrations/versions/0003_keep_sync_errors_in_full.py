"""Keep Cal.com's errors in full: sync_error_message becomes text, sync_error_detail keeps the structure.

Revision ID: 0003
Revises: 0002

- ``appointments.sync_error_message``: ``varchar(255)`` -> ``text``. varchar to text is binary
  coercible: PostgreSQL changes the catalog only, with no table rewrite and no index rebuild (the test
  checks the table's relfilenode is unchanged), so the ACCESS EXCLUSIVE lock lasts milliseconds.
- ``appointments.sync_error_detail jsonb``: the last error as structure (HTTP status, Cal.com's code and
  message, request id, category). Adding a nullable column without default is also catalog-only.
Both changes are one ALTER TABLE, so the lock is taken once, under lock_timeout with retries.

Downgrade: back to varchar(255) (a rewrite) and drops sync_error_detail. It refuses when a message is
longer than 255 characters, rather than cutting it (nothing is lost silently).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    online.begin_revision()
    online.ddl(
        "-- squawk-ignore changing-column-type -- varchar to text is binary coercible: no rewrite (tested)\n"
        "ALTER TABLE appointments ALTER COLUMN sync_error_message TYPE text, ADD COLUMN sync_error_detail jsonb"
    )
    op.execute(
        "COMMENT ON COLUMN appointments.sync_error_message IS "
        "'The last sync error in full (no length limit since calsync 0003).'"
    )
    op.execute(
        "COMMENT ON COLUMN appointments.sync_error_detail IS "
        "'The last sync error as structure: status, code, message, category, request id.'"
    )


def downgrade() -> None:
    online.begin_revision()
    op.execute(
        """DO $$
        DECLARE n bigint; ids text;
        BEGIN
            SELECT count(*), string_agg(id::text, ', ' ORDER BY id) FILTER (WHERE rn <= 10) INTO n, ids
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM appointments
                  WHERE length(sync_error_message) > 255) AS s;
            IF n > 0 THEN
                RAISE EXCEPTION USING ERRCODE = 'CS001',
                    MESSAGE = format('downgrade of 0003 refused: %s sync_error_message value(s) are longer than 255 characters', n),
                    DETAIL = format('first ids: %s', ids),
                    HINT = 'Archive or shorten them first; the downgrade does not cut them.';
            END IF;
        END $$"""
    )
    online.ddl(
        "-- squawk-ignore changing-column-type -- a rewrite, but only on the way down\n"
        "ALTER TABLE appointments DROP COLUMN sync_error_detail, "
        "ALTER COLUMN sync_error_message TYPE varchar(255)"
    )
