-- Queries of the outbox worker (worker/sync/drain.py). State changes are calsync functions; these call them.

-- name: claim
-- Companies interleaved, at most per_company each; the companies whose key is paused, out of slots or missing
-- are skipped (calsync.claim_sync_events, revision 0023).
SELECT outbox_id::text, appointment_id, event_type, attempts, covers_seq, company_id
FROM calsync.claim_sync_events(%(worker)s, %(limit)s, make_interval(secs => %(lease_s)s), %(skip)s::bigint[],
                               %(per_company)s);

-- name: finish
SELECT recorded_event_id::text, recorded_outcome
FROM calsync.finish_sync_events(%(worker)s, %(results)s::jsonb, %(max_attempts)s, now(),
                                make_interval(secs => %(retry_base_s)s), make_interval(secs => %(retry_cap_s)s));

-- name: release
SELECT calsync.release_sync_events(%(worker)s, %(ids)s::uuid[]);

-- name: release_unknown
SELECT calsync.release_unknown_leases(%(worker)s, %(held)s::uuid[]);

-- name: renew
SELECT calsync.renew_leases(%(worker)s, %(ids)s::uuid[], make_interval(secs => %(lease_s)s));

-- name: reap
SELECT calsync.reap_expired_leases(now(), make_interval(secs => %(dead_after_s)s));

-- name: prune
SELECT calsync.prune_sync_history();

-- name: listener_register
-- The worker's identity is the secret each of its connections sets in calsync.worker_token (see
-- calsync.authenticate_worker): the listener calls, claim, renew and release act only as the worker
-- registered under it.
SELECT calsync.register_listener(%(worker)s);

-- name: listener_idle
SELECT calsync.heartbeat_listener(%(worker)s, %(idle)s);

-- name: listener_remove
SELECT calsync.remove_listener(%(worker)s);

-- name: queue_stats
SELECT depth, dead, oldest_pending_s FROM calsync.queue_stats();

-- name: sync_state
-- Everything the worker needs to sync these appointments: one calsync.appointment_sync_state each, as JSON
-- (decoded strictly into worker/sync/contract.py SyncState).
SELECT to_jsonb(s)::text FROM calsync.appointment_sync_state(%(ids)s::bigint[]) AS s;

-- name: key_problem_report
SELECT calsync.report_key_problem(%(worker)s, %(key_ref)s, %(category)s, %(message)s);

-- name: key_problem_clear
SELECT calsync.clear_key_problem(%(worker)s, %(key_ref)s);

-- name: rate_slots
SELECT granted, first_in_s, spacing_s, paused_for_s
FROM calsync.take_rate_slots(%(worker)s, %(key_ref)s, %(want)s, %(limit)s, make_interval(secs => %(window_s)s),
                             make_interval(secs => %(max_ahead_s)s));

-- name: rate_pause
SELECT calsync.pause_rate_limit(%(worker)s, %(key_ref)s, %(seconds)s, %(reason)s);

-- name: queue_stats_by_company
SELECT company_id, depth, running, dead, held, oldest_pending_s FROM calsync.queue_stats_by_company();

-- name: rate_limit_stats
SELECT key_ref, rate_limit, rate_window_s, granted, delayed, refused, wait_s, pauses, paused_for_s
FROM calsync.rate_limit_stats();
