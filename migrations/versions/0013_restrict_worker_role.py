"""Least privilege that holds: the worker role acts only as itself, within bounds, and reads no one else's id.

Revision ID: 0013
Revises: 0012

Found (issue 11): as ``calsync_worker``, ``calsync.prune_sync_history('0 s', '0 s')`` removed the dead letters
and the whole attempt archive; a claim or a renewal could lease for 100 years; and the role wrote
``calsync.outbox_listeners`` itself, so it could delete or refresh other workers' heartbeats. Now:

- **Identity.** Each of a worker's connections sets ``calsync.worker_token`` (a random secret of its own, at
  least 32 characters). ``calsync.register_listener(worker_id)`` stores its SHA-256 in the new column
  ``calsync.outbox_listeners.token_hash``; ``calsync.authenticate_worker`` then refuses (SQLSTATE CS020,
  ``worker_token_matches``) every claim, renewal, release, heartbeat or removal made for an id whose secret the
  session does not present. A live id cannot be registered under another secret (CS021,
  ``worker_id_taken_while_alive``); one silent for ``worker_min_dead_after`` can, and its leases go back.
  Heartbeats, idle and removal are SECURITY DEFINER functions (``heartbeat_listener``, ``register_listener``,
  ``remove_listener``); the queue's depth is ``calsync.queue_stats()``. The role loses every privilege on
  ``calsync.outbox_delivery`` and ``calsync.outbox_listeners`` (their locked_by, worker_id and token_hash name
  the other workers and their secrets' hashes) and gets SELECT on ``alembic_version`` (the worker refuses to
  start on another revision, and could not read it).
- **Bounds** (``calsync.enforce_worker_limits``, values in ``calsync.settings``, defaults in
  ``calsync.worker_limit`` when a row is missing). A request beyond a bound is refused, not clamped, so a
  misconfigured worker fails at its first call: a lease of more than ``worker_max_lease`` (1 hour) or not
  positive (CS010, ``worker_lease_within_max``); pruning dead events younger than ``worker_min_keep_dead``
  (7 days) or attempts younger than ``worker_min_keep_attempts`` (30 days) (CS011, ``worker_keeps_history``);
  reaping after less than ``worker_min_dead_after`` (30 s) of silence, which would take live workers' leases
  (CS012, ``worker_reaps_the_silent``); and any ``p_now`` other than ``now()`` (CS013, ``worker_time_is_now``),
  which would stretch every bound. Roles with the calsync schema owner's privileges, and superusers, are not
  bound (``calsync.caller_is_admin``: the session's SET ROLE, else its login role).
- **Personal data.** ``calsync_readonly`` no longer sees the customer's name in
  ``remediation.customers_missing_contact``, nor the error texts (which may echo an attendee's name, e-mail
  or phone) in ``past_unsynced``, ``stuck_outbox`` and ``dead_letters``: it gets their other columns;
  ``calsync_remediator`` gets them in full.

**Breaks running code:** a worker of an older version writes ``calsync.outbox_listeners`` directly and
presents no secret, so as ``calsync_worker`` it is refused after this revision. Stop the workers, migrate, start
the new version (which sets ``calsync.worker_token`` on its connections). Events wait in the outbox meanwhile.
A worker connected as the owner or a superuser goes on working (it is not bound).

Catalog only: a nullable column without a default (no rewrite), functions, grants and four settings rows. The
column's brief ACCESS EXCLUSIVE lock on ``calsync.outbox_listeners`` (read by every booking's wake-up
trigger) is taken last, under lock_timeout with retries. Downgrade restores revision 0012's functions and
grants exactly, and drops the new functions, the column and the settings.
"""

from __future__ import annotations

from migrations import online

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FROZEN = online.load_frozen(__file__)


def upgrade() -> None:
    online.begin_revision()
    online.ddl(FROZEN["settings"], FROZEN["functions"], FROZEN["roles"], FROZEN["table"])


def downgrade() -> None:
    online.begin_revision()
    online.ddl(
        FROZEN["previous_functions"],
        FROZEN["drop_functions"],
        FROZEN["previous_roles"],
        FROZEN["drop_table"],
        FROZEN["drop_settings"],
    )
