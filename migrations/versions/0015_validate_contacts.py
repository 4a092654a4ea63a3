"""Valid contacts at booking time: Cal.com's own e-mail rule in SQL, the stored e-mail kept, per-salon settings.

Revision ID: 0015
Revises: 0014

- ``calsync.is_usable_email`` applies exactly the rule Cal.com's ``emailSchema`` applies (its regex, at most 254
  characters, nothing trimmed) instead of "not blank": ``frau.klein@web`` and ``kunde@@mail.de`` no longer count as
  usable. New ``calsync.has_email`` (not NULL, not blank: an e-mail is there at all).
- The placeholder rule keeps what is stored: ``customers_fill_placeholder_email`` writes ``customer_<id>@<domain>``
  only where there is no e-mail at all (NULL or blank) and no usable phone, as before; an e-mail Cal.com refuses
  is left as it is (the worker sends the placeholder in its place). No row changes: before this revision every
  non-blank e-mail was "usable", so the trigger had filled exactly these rows already.
- ``calsync.company_settings`` (new, empty): per company ``phone_region`` (ISO 3166 alpha-2) and ``language``
  (Cal.com's attendee language), NULL meaning the worker's default (CALSYNC_PHONE_REGION, default DE; de).
- The contract grows (``ALTER TYPE … ADD ATTRIBUTE``, appended): ``calsync.sync_customer.email_accepted`` and
  ``placeholder_email``, ``calsync.appointment_sync_state.phone_region`` and ``language``; the state function fills
  them. The worker role may read ``calsync.company_settings`` and ``calsync.settings`` (the placeholder domain).
- Phone findings as facts: ``calsync.record_contact_finding`` / ``calsync.resolve_contact_finding`` keep one open
  ``calsync.integrity_issues`` row (rule ``customers_phone_valid_for_calcom``, found by the worker) per customer;
  trigger ``customers_resolve_changed_contact_findings`` resolves it when the phone changes.
- ``remediation.customers_with_invalid_contact`` lists refused e-mails and the phone findings of customers with
  something to sync (readonly without the stored value).
- ``remediation_customers_missing_contact_index`` is a partial index over ``NOT calsync.is_usable_email(email)``:
  it is dropped (CONCURRENTLY) before the rule changes and built again (CONCURRENTLY) after, so it never holds rows
  by the old rule. The view reads the refused e-mails from a new partial index,
  ``remediation_customers_invalid_email_index``, and the planner counts them right with statistics on
  ``length(email)`` (``calsync.customers_email_length``; ``ANALYZE (SKIP_LOCKED) customers`` fills them), so that it
  takes milliseconds and is not JIT-compiled. A later change of the e-mail rule must rebuild both indexes.

Deploy-safe: the catalog changes run as one unit under ``lock_timeout`` with retries (brief locks on customers,
for the trigger, and companies, for the foreign key of an empty table); the index steps leave the transaction.

**Breaks running code:** the sync state has new attributes, and a worker of an older version decodes it strictly
(an unknown field is an error): stop the workers, migrate, start the new version (which refuses to start on a
database that is not at its head). Events wait in the outbox meanwhile.
Downgrade restores revision 0014: the attributes are dropped, 0014's e-mail rule, placeholder trigger and state
function come back from frozen copies, the new table (its settings), functions, trigger and view are dropped, the
index is built again by the old rule. The findings recorded stay in calsync.integrity_issues (resolved, never
deleted: they are resolved here).
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)

# revision 0005's index over the customers without a usable contact: its predicate calls calsync.is_usable_email
MISSING_CONTACT_INDEX = "remediation_customers_missing_contact_index"
MISSING_CONTACT_INDEX_SQL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_customers_missing_contact_index ON customers (id) "
    "WHERE NOT calsync.is_usable_email(email) AND NOT calsync.is_usable_phone(phone)"
)
# the refused e-mails remediation.customers_with_invalid_contact reads (a seq scan with the regex is ~1 s on 300,000
# customers); the planner estimates them with the statistics on length(email) of FROZEN["statistics"]
INVALID_EMAIL_INDEX = "remediation_customers_invalid_email_index"
INVALID_EMAIL_INDEX_SQL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS remediation_customers_invalid_email_index ON customers (id) "
    "WHERE calsync.has_email(email) AND NOT calsync.is_usable_email(email)"
)


def upgrade() -> None:
    online.begin_revision()
    online.drop_index_concurrently(MISSING_CONTACT_INDEX)  # leaves the transaction: its settings go with it
    online.begin_revision()
    online.ddl(
        FROZEN["table"],
        FROZEN["types"],
        FROZEN["functions"],
        FROZEN["trigger"],
        FROZEN["view"],
        FROZEN["grants"],
        FROZEN["statistics"],
    )
    online.concurrent_index(MISSING_CONTACT_INDEX, MISSING_CONTACT_INDEX_SQL)
    online.concurrent_index(INVALID_EMAIL_INDEX, INVALID_EMAIL_INDEX_SQL)
    with op.get_context().autocommit_block():
        op.execute(FROZEN["analyze"])


def downgrade() -> None:
    online.begin_revision()
    online.drop_index_concurrently(MISSING_CONTACT_INDEX)
    online.drop_index_concurrently(INVALID_EMAIL_INDEX)
    online.begin_revision()
    online.ddl(FROZEN["drop_new"], FROZEN["previous_functions"], FROZEN["drop"])
    online.resolve_issues_of(["customers_phone_valid_for_calcom"], "0015")
    online.concurrent_index(MISSING_CONTACT_INDEX, MISSING_CONTACT_INDEX_SQL)
