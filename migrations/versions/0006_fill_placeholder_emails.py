"""Every customer has a contact Cal.com accepts: placeholder e-mails, filled by a trigger and backfilled.

Revision ID: 0006
Revises: 0005

A customer saved with no usable e-mail (NULL or blank) and no usable phone (NULL, blank or the voice
agent's ``anonymous_<ts>_<hash>``) gets ``customer_<id>@<domain>``, the domain from
``calsync.settings`` (``placeholder_email_domain``, default ``placeholder.invalid``: a reserved TLD, so
nothing is ever delivered), and ``email_is_placeholder = true``. A real e-mail given later replaces it
and clears the flag. This repairs at the source what the incident fixed by hand (33 customers).

The setting, the contact functions and the ``email_is_placeholder`` column come from 0002. Steps: the
functions; the trigger (brief lock, retried); then the backfill of existing rows in
batches of ``CALSYNC_BATCH_SIZE``, each its own short transaction, through the same trigger.
No pre-flight: the rule repairs rows instead of refusing them.
"""

from __future__ import annotations

from alembic import op

from migrations import online

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    op.execute(FROZEN["functions"])
    online.ddl(FROZEN["trigger"])
    online.batches("calsync.backfill_placeholder_emails", what="placeholder e-mails")


def downgrade() -> None:
    online.begin_revision()
    online.ddl("DROP TRIGGER customers_fill_placeholder_email ON customers")
    op.execute(FROZEN["drop_functions"])
