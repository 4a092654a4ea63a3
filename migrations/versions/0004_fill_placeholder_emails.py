"""Every customer has a contact Cal.com accepts: placeholder e-mails, filled by a trigger and backfilled.

Revision ID: 0004
Revises: 0003

A customer saved with no usable e-mail (NULL or blank) and no usable phone (NULL, blank or the voice
agent's ``anonymous_<ts>_<hash>``) gets ``customer_<id>@<domain>``, the domain from
``calsync.settings`` (``placeholder_email_domain``, default ``placeholder.invalid``: a reserved TLD, so
nothing is ever delivered), and ``email_is_placeholder = true``. A real e-mail given later replaces it
and clears the flag. This repairs at the source what the incident fixed by hand (33 customers).

The setting and the contact functions come from 0002. Steps: ``email_is_placeholder`` column (nullable-free with a constant default: catalog
only); the functions; the trigger (brief lock, retried); then the backfill of existing rows in
batches of ``CALSYNC_BATCH_SIZE``, each its own short transaction, through the same trigger.
No pre-flight: the rule repairs rows instead of refusing them.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["functions"])
    online.ddl(
        "ALTER TABLE customers ADD COLUMN email_is_placeholder boolean NOT NULL DEFAULT false",
        "COMMENT ON COLUMN customers.email_is_placeholder IS "
        "'true while email is calsync''s customer_<id>@<domain> placeholder, not a real address'",
        FROZEN["trigger"],
    )
    online.batches("calsync.backfill_placeholder_emails", what="placeholder e-mails")


def downgrade() -> None:
    online.begin_revision()
    online.ddl(
        "DROP TRIGGER customers_fill_placeholder_email ON customers",
        "ALTER TABLE customers DROP COLUMN email_is_placeholder",
    )
    op.execute(FROZEN["drop_functions"])
