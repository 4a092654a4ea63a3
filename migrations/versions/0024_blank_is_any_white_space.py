"""A contact that is nothing but white space is no contact: tabs, newlines and no-break spaces count as blank.

Revision ID: 0024
Revises: 0023

The property tests' finding blank_is_only_spaces (issue 11): ``btrim()`` trims only ' ', so an e-mail or phone of
a tab, a newline or a no-break space (a copied form field) counted as a usable contact: no placeholder, the blank
e-mail was kept and collided on customers_email_unique, and " anonymous_…" passed as a real phone.
``calsync.is_blank`` (new) is Unicode's white space; ``calsync.has_email``, ``calsync.is_usable_phone`` (which write the
same white space out: the remediation views inline them as their reader), the placeholder trigger and its
backfill batch use it; a phone that is white space and then anonymous_… is the stand-in too.
Deploy: the two partial indexes of revision 0015 whose predicates call has_email/is_usable_phone are dropped
CONCURRENTLY first (an index built under the old rule would answer the new one wrongly), the functions replaced
(no table is locked or rewritten), and the indexes built again CONCURRENTLY; meanwhile the remediation views
scan customers. Rows saved before keep what they have
until they are written again; ``remediation.backfill_placeholder_emails`` (the runbook) repairs them in batches.
Downgrade restores the definitions of revisions 0006 and 0015 and drops calsync.is_blank.
"""

from __future__ import annotations

from migrations import online

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)

# revision 0015's partial indexes, whose predicates call the functions this revision changes
INDEXES = {
    "remediation_customers_missing_contact_index": (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_customers_missing_contact_index ON customers (id) "
        "WHERE NOT calsync.is_usable_email(email) AND NOT calsync.is_usable_phone(phone)"
    ),
    "remediation_customers_invalid_email_index": (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_customers_invalid_email_index ON customers (id) "
        "WHERE calsync.has_email(email) AND NOT calsync.is_usable_email(email)"
    ),
}


def _with_indexes_rebuilt(*blocks: str) -> None:
    online.begin_revision()
    for name in INDEXES:
        online.drop_index_concurrently(name)
    online.begin_revision()
    online.ddl(*blocks)
    for name, create_sql in INDEXES.items():
        online.concurrent_index(name, create_sql)


def upgrade() -> None:
    _with_indexes_rebuilt(FROZEN["functions"])


def downgrade() -> None:
    _with_indexes_rebuilt(FROZEN["previous_functions"], FROZEN["drop"])
