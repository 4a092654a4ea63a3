"""One live appointment per customer, start and service.

Revision ID: 0009
Revises: 0008

``appointments_one_live_per_customer_slot``: a partial unique index on (customer_id, starts_at,
service_id) over live appointments (status not cancelled/no_show), so a cancelled booking frees its
slot. The incident's Hans Schuster had #753, #754 and #755 at one slot.

Deploy safety: the pre-flight stops with a report when live duplicates exist (or, in new-rows-only
mode, lists all but the first of each group in calsync.integrity_issues and leaves exactly those rows
out of the index). The index is built CONCURRENTLY outside the revision's transaction (no write lock),
with lock_timeout retries; a failed build is dropped, never left INVALID. A partial index cannot be
attached as a table constraint (PostgreSQL only attaches full unique indexes), so the index is the rule.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RULE = "appointments_one_live_per_customer_slot"
LIVE = "status NOT IN ('cancelled', 'no_show')"


RULE_DEF = online.UniqueRule(
    name=RULE,
    table="appointments",
    columns="customer_id, starts_at, service_id",
    where=LIVE,
    keep_first="(calcom_v2_booking_uid IS NULL AND calcom_booking_id IS NULL), id",
    description="one live appointment per customer, start and service",
    fix="Keep one appointment of each group (the one with a Cal.com booking) and cancel the others, as the "
    "incident did for #754 and #755. Find the groups with: SELECT customer_id, starts_at, service_id, "
    f"array_agg(id ORDER BY id) FROM appointments WHERE {LIVE} GROUP BY 1, 2, 3 HAVING count(*) > 1;",
)
PREFLIGHT = [RULE_DEF.check]


def upgrade() -> None:
    online.begin_revision()
    online.unique_rule(revision, RULE_DEF)
    op.execute(
        f"COMMENT ON INDEX {RULE} IS 'One live appointment per customer, start and service: cancel the "
        "duplicate or move it to another time.'"
    )


def downgrade() -> None:
    online.begin_revision()
    online.drop_index_concurrently(RULE)
    online.resolve_issues_of([RULE], revision)
