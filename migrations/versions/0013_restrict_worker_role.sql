-- Frozen SQL of revision 0013 (never edit; sql/ holds the current definitions).

-- name: settings
INSERT INTO calsync.settings (key, value, description) VALUES
    ('worker_max_lease', '1 hour',
     'The longest lease calsync_worker may take or renew (claim_sync_events, renew_leases); refused beyond it (CS010).'),
    ('worker_min_keep_dead', '7 days',
     'calsync_worker keeps dead events at least this long (prune_sync_history p_keep); refused below it (CS011).'),
    ('worker_min_keep_attempts', '30 days',
     'calsync_worker keeps sync attempts at least this long (prune_sync_history p_keep_attempts); refused below it (CS011).'),
    ('worker_min_dead_after', '30 seconds',
     'Heartbeat silence before calsync_worker may reap a worker''s leases (CS012), and before its id may be registered again under another secret (CS021).')
ON CONFLICT (key) DO NOTHING;

-- name: functions
-- from: sql/functions/caller_is_admin.sql
-- from: sql/functions/worker_limit.sql
-- from: sql/functions/enforce_worker_limits.sql
-- from: sql/functions/authenticate_worker.sql
-- from: sql/functions/heartbeat_listener.sql
-- from: sql/functions/register_listener.sql
-- from: sql/functions/remove_listener.sql
-- from: sql/functions/queue_stats.sql
-- from: sql/functions/claim_sync_events.sql
-- from: sql/functions/renew_leases.sql
-- from: sql/functions/reap_expired_leases.sql
-- from: sql/functions/release_sync_events.sql
-- from: sql/functions/release_unknown_leases.sql
-- from: sql/functions/prune_sync_history.sql
-- Who is calling, seen from inside a SECURITY DEFINER function (where current_user is the owner): the role the
-- session SET ROLE to, else the role it logged in as. Neither can be changed inside such a function, and a
-- session can only SET ROLE to roles it is a member of, so calsync_worker cannot pass for the owner.
-- An admin (a role with the privileges of the calsync schema's owner, or a superuser) is held to no worker
-- limit: tests pass their own time, operators prune below the floors.
CREATE OR REPLACE FUNCTION calsync.caller_is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT pg_has_role(CASE WHEN current_setting('role') = 'none' THEN session_user
                            ELSE current_setting('role')::name END,
                       (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'calsync'), 'USAGE')
$$;
COMMENT ON FUNCTION calsync.caller_is_admin() IS
    'True when the calling session''s role (SET ROLE, else the login role) has the calsync schema owner''s privileges or is a superuser: no worker limit applies.';

-- The limits calsync_worker is held to (calsync.enforce_worker_limits, calsync.heartbeat_listener): the value
-- in calsync.settings, or the default here when the row is missing, so a deleted row never lifts a limit.
--   worker_max_lease          1 hour    the longest lease a claim or a renewal may take
--   worker_min_keep_dead      7 days    dead events are kept at least this long (prune_sync_history p_keep)
--   worker_min_keep_attempts  30 days   the attempts archive is kept at least this long (p_keep_attempts)
--   worker_min_dead_after     30 s      heartbeat silence before a worker counts as gone: the reaper's
--                                       p_dead_after, and before its id may be registered under another secret
CREATE OR REPLACE FUNCTION calsync.worker_limit(p_key text) RETURNS interval
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT coalesce((SELECT s.value::interval FROM calsync.settings s WHERE s.key = p_key),
                    CASE p_key WHEN 'worker_max_lease' THEN interval '1 hour'
                               WHEN 'worker_min_keep_dead' THEN interval '7 days'
                               WHEN 'worker_min_keep_attempts' THEN interval '30 days'
                               WHEN 'worker_min_dead_after' THEN interval '30 seconds' END)
$$;
COMMENT ON FUNCTION calsync.worker_limit(text) IS
    'A limit calsync_worker is held to: calsync.settings value of p_key, else its default (worker_max_lease 1 hour, worker_min_keep_dead 7 days, worker_min_keep_attempts 30 days, worker_min_dead_after 30 seconds).';

-- What calsync_worker may ask of the delivery functions, checked first thing in each; an admin
-- (calsync.caller_is_admin) is not bound. Every refusal is an error with a SQLSTATE and constraint name of
-- its own, never a silent clamp (a misconfigured worker fails at its first call, not by losing leases later):
--   CS013 worker_time_is_now         p_now must be now(): no lease, retry or retention stretched by a clock of its own
--   CS010 worker_lease_within_max    0 < lease <= worker_max_lease (claim, renew)
--   CS011 worker_keeps_history       p_keep >= worker_min_keep_dead, p_keep_attempts >= worker_min_keep_attempts
--   CS012 worker_reaps_the_silent    p_dead_after >= worker_min_dead_after (else it reaps live workers' leases)
-- A limit passed as NULL is not checked; callers pass coalesce(x, '0') where a NULL would mean "no limit".
CREATE OR REPLACE FUNCTION calsync.enforce_worker_limits(p_function text, p_now timestamptz,
                                                        p_lease interval DEFAULT NULL,
                                                        p_keep interval DEFAULT NULL,
                                                        p_keep_attempts interval DEFAULT NULL,
                                                        p_dead_after interval DEFAULT NULL) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_limit interval;
BEGIN
    IF calsync.caller_is_admin() THEN
        RETURN;
    END IF;
    IF p_now IS DISTINCT FROM now() THEN
        RAISE EXCEPTION '%: calsync_worker works at the database''s time: p_now must be now() (%), not %',
                        p_function, now(), coalesce(p_now::text, 'NULL')
            USING ERRCODE = 'CS013', CONSTRAINT = 'worker_time_is_now',
                  HINT = 'Leave p_now out (it defaults to now()); only an owner or a superuser may pass another time.';
    END IF;
    IF p_lease IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_max_lease');
        IF p_lease <= interval '0' OR p_lease > v_limit THEN
            RAISE EXCEPTION '%: a lease of % is refused: calsync_worker leases for more than 0 and at most % (calsync.settings worker_max_lease)',
                            p_function, p_lease, v_limit
                USING ERRCODE = 'CS010', CONSTRAINT = 'worker_lease_within_max',
                      HINT = 'Lease for a few minutes (CALSYNC_LEASE_S) and renew while the work runs.';
        END IF;
    END IF;
    IF p_keep IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_keep_dead');
        IF p_keep < v_limit THEN
            RAISE EXCEPTION '%: keeping dead events for % is refused: calsync_worker keeps them at least % (calsync.settings worker_min_keep_dead)',
                            p_function, p_keep, v_limit
                USING ERRCODE = 'CS011', CONSTRAINT = 'worker_keeps_history',
                      HINT = 'Call calsync.prune_sync_history() with its defaults; an owner or a superuser may prune sooner.';
        END IF;
    END IF;
    IF p_keep_attempts IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_keep_attempts');
        IF p_keep_attempts < v_limit THEN
            RAISE EXCEPTION '%: keeping sync attempts for % is refused: calsync_worker keeps them at least % (calsync.settings worker_min_keep_attempts)',
                            p_function, p_keep_attempts, v_limit
                USING ERRCODE = 'CS011', CONSTRAINT = 'worker_keeps_history',
                      HINT = 'Call calsync.prune_sync_history() with its defaults; an owner or a superuser may prune sooner.';
        END IF;
    END IF;
    IF p_dead_after IS NOT NULL THEN
        v_limit := calsync.worker_limit('worker_min_dead_after');
        IF p_dead_after < v_limit THEN
            RAISE EXCEPTION '%: reaping the leases of workers silent for % is refused: calsync_worker waits at least % (calsync.settings worker_min_dead_after)',
                            p_function, p_dead_after, v_limit
                USING ERRCODE = 'CS012', CONSTRAINT = 'worker_reaps_the_silent',
                      HINT = 'A live worker heart-beats every few seconds; reap after a silence of several heartbeats.';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION calsync.enforce_worker_limits(text, timestamptz, interval, interval, interval, interval) IS
    'Refuse what calsync_worker may not ask (not now(): CS013; lease beyond worker_max_lease: CS010; retention below the floors: CS011; reaping before worker_min_dead_after: CS012); admins are not bound.';

-- A worker's identity is the secret its sessions present, not the id it names. Each of its connections sets
-- calsync.worker_token (its own random secret, >= 32 characters; a session setting, so no other session sees
-- it); calsync.register_listener stores only its SHA-256, in calsync.outbox_listeners, which calsync_worker
-- cannot read. Every delivery and listener function that takes p_worker calls this first: the session must
-- present the secret registered for p_worker. An admin session without a secret may act for any worker.
CREATE OR REPLACE FUNCTION calsync.authenticate_worker(p_function text, p_worker text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_token text := nullif(current_setting('calsync.worker_token', true), '');
BEGIN
    IF v_token IS NULL AND calsync.caller_is_admin() THEN
        RETURN;
    END IF;
    -- one message whether the id is unknown or its secret differs: the error tells no one which ids exist
    IF v_token IS NULL OR NOT EXISTS (
        SELECT 1 FROM calsync.outbox_listeners l
        WHERE l.worker_id = p_worker AND l.token_hash = sha256(convert_to(v_token, 'UTF8'))) THEN
        RAISE EXCEPTION '%: this session is not worker % (no worker of that id is registered under its calsync.worker_token)',
                        p_function, p_worker
            USING ERRCODE = 'CS020', CONSTRAINT = 'worker_token_matches',
                  HINT = 'A worker sets calsync.worker_token on each connection, registers with calsync.register_listener(worker_id), and then acts only as that worker.';
    END IF;
END
$$;
COMMENT ON FUNCTION calsync.authenticate_worker(text, text) IS
    'Refuse (CS020, worker_token_matches) a session that is not p_worker: it must present the secret registered for p_worker in calsync.worker_token; an admin session without one may act for any worker.';

-- A worker's heartbeat and idle flag in calsync.outbox_listeners (enqueueing notifies only while a worker is
-- idle; the reaper takes back the leases of workers that stopped heart-beating). The row is also the
-- worker's identity (calsync.authenticate_worker): the SHA-256 of the secret in its sessions'
-- calsync.worker_token. The first heartbeat under an id makes the row; one under another secret is refused
-- (CS021) while the row is alive, and takes the id over once the row has been silent for
-- worker_min_dead_after: the previous holder is gone, and the leases it still held are due again at once.
CREATE OR REPLACE FUNCTION calsync.heartbeat_listener(p_worker text, p_idle boolean,
                                                     p_now timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_token text := nullif(current_setting('calsync.worker_token', true), '');
    v_admin boolean := calsync.caller_is_admin();
    v_hash bytea;
    v_row calsync.outbox_listeners;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.heartbeat_listener', p_now);
    IF (v_token IS NULL AND NOT v_admin) OR length(coalesce(v_token, repeat('x', 32))) < 32 THEN
        RAISE EXCEPTION 'calsync.heartbeat_listener: worker % presents no usable calsync.worker_token (a secret of at least 32 characters)',
                        p_worker
            USING ERRCODE = 'CS020', CONSTRAINT = 'worker_token_matches',
                  HINT = 'Set calsync.worker_token to a random secret of the worker''s own on each of its connections, then register.';
    END IF;
    v_hash := sha256(convert_to(v_token, 'UTF8'));  -- NULL for an admin without a secret
    FOR attempt IN 1..3 LOOP
        SELECT * INTO v_row FROM calsync.outbox_listeners WHERE worker_id = p_worker FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO calsync.outbox_listeners (worker_id, idle, heartbeat_at, token_hash)
            VALUES (p_worker, p_idle, p_now, v_hash)
            ON CONFLICT (worker_id) DO NOTHING;
            IF FOUND THEN
                RETURN;
            END IF;
            CONTINUE;  -- another session registered this id meanwhile: look again
        END IF;
        IF v_row.token_hash IS DISTINCT FROM v_hash THEN
            IF v_row.heartbeat_at > p_now - calsync.worker_limit('worker_min_dead_after') AND NOT v_admin THEN
                RAISE EXCEPTION 'calsync.heartbeat_listener: worker id % is in use by a live worker (last heartbeat %)',
                                p_worker, v_row.heartbeat_at
                    USING ERRCODE = 'CS021', CONSTRAINT = 'worker_id_taken_while_alive',
                          HINT = 'Each worker needs an id of its own (CALSYNC_WORKER_ID; the default host:pid:random is); an id is free again once its holder has been silent for worker_min_dead_after.';
            END IF;
            UPDATE calsync.outbox_delivery
            SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
                last_error = 'lease taken back: the worker holding it stopped, and its id was registered again',
                last_category = 'NETWORK'
            WHERE status = 'running' AND locked_by = p_worker;
        END IF;
        UPDATE calsync.outbox_listeners SET idle = p_idle, heartbeat_at = p_now, token_hash = v_hash
        WHERE worker_id = p_worker;
        RETURN;
    END LOOP;
    RAISE EXCEPTION 'calsync.heartbeat_listener: worker id % kept changing while it registered', p_worker
        USING ERRCODE = '40001';
END
$$;
COMMENT ON FUNCTION calsync.heartbeat_listener(text, boolean, timestamptz) IS
    'A worker''s heartbeat and idle flag; registers its id under the session''s calsync.worker_token, refused (CS021) while another secret''s row is alive.';

-- A starting worker registers its id under the secret its sessions present (calsync.worker_token), busy:
-- its first heartbeat (calsync.heartbeat_listener).
CREATE OR REPLACE FUNCTION calsync.register_listener(p_worker text, p_now timestamptz DEFAULT now()) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT calsync.heartbeat_listener(p_worker, false, p_now)
$$;
COMMENT ON FUNCTION calsync.register_listener(text, timestamptz) IS
    'Register a starting worker (busy) under the session''s calsync.worker_token: its first heartbeat.';

-- A stopping worker removes its own listener row (after giving back what it holds); only its own
-- (calsync.authenticate_worker). Returns whether there was one.
CREATE OR REPLACE FUNCTION calsync.remove_listener(p_worker text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM calsync.authenticate_worker('calsync.remove_listener', p_worker);
    DELETE FROM calsync.outbox_listeners WHERE worker_id = p_worker;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION calsync.remove_listener(text) IS
    'Remove the calling worker''s own listener row (it must be that worker: calsync.authenticate_worker); true when there was one.';

-- The queue's depth for the worker's metrics, without giving it the delivery table (whose locked_by names
-- every other worker): undelivered events, dead ones, and the age of the oldest undelivered one.
CREATE OR REPLACE FUNCTION calsync.queue_stats(p_now timestamptz DEFAULT now())
RETURNS TABLE (depth bigint, dead bigint, oldest_pending_s numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT count(*) FILTER (WHERE d.status IS DISTINCT FROM 'dead'),
           count(*) FILTER (WHERE d.status = 'dead'),
           coalesce(extract(epoch FROM p_now - min(o.created_at) FILTER (WHERE d.status IS DISTINCT FROM 'dead')), 0)
    FROM calsync.outbox o LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
$$;
COMMENT ON FUNCTION calsync.queue_stats(timestamptz) IS
    'Undelivered events, dead events and the oldest undelivered event''s age in seconds (the worker''s metrics).';

-- Delivery of the outbox: state lives in calsync.outbox_delivery (the outbox itself stays insert-only).
-- SECURITY DEFINER: the worker's role runs these functions and reads what it syncs, nothing more.
-- A delivery row is made by the claim, one per event being worked on; on success the event, every
-- earlier event of the same appointment, and their delivery rows are deleted (the attempts archive in
-- calsync.sync_attempts is the record). Each transition is one function, in the file named after it.

-- Claim up to p_limit events, at most one per appointment: an event is claimable when no earlier event of
-- its appointment is still undelivered (unless dead), and it is new or its retry is due. One statement:
-- FOR UPDATE SKIP LOCKED on the outbox rows, then INSERT … ON CONFLICT DO UPDATE … WHERE status = 'retry'
-- on the delivery row, so a racing claimer can never take an event that is running. covers_seq is the
-- appointment's newest event at claim time: the worker syncs the appointment's current state, which
-- coalesces every event up to it (create then cancel sends nothing; reschedules collapse to the last).
-- The caller must be p_worker (calsync.authenticate_worker) and, as calsync_worker, lease for at most
-- worker_max_lease at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM calsync.authenticate_worker('calsync.claim_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.claim_sync_events', p_now,
                                          p_lease => coalesce(p_lease, interval '0'));
    RETURN QUERY
    WITH heads AS (
        SELECT o.id, o.aggregateid, o.type
        FROM calsync.outbox o
        LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
        WHERE o.aggregatetype = 'appointment'
          AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
          AND NOT EXISTS (
              SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
              WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
        ORDER BY o.seq
        LIMIT p_limit
        FOR UPDATE OF o SKIP LOCKED
    ), claimed AS (
        INSERT INTO calsync.outbox_delivery AS d
            (outbox_id, aggregateid, status, attempts, locked_by, locked_until, covers_seq, next_attempt_at)
        SELECT h.id, h.aggregateid, 'running', 1, p_worker, p_now + p_lease,
               (SELECT max(x.seq) FROM calsync.outbox x WHERE x.aggregateid = h.aggregateid), p_now
        FROM heads h
        ON CONFLICT ON CONSTRAINT outbox_delivery_pkey DO UPDATE
            SET status = 'running', attempts = d.attempts + 1, locked_by = excluded.locked_by,
                locked_until = excluded.locked_until, covers_seq = excluded.covers_seq
            WHERE d.status = 'retry'
        RETURNING d.outbox_id, d.aggregateid, d.attempts, d.covers_seq
    )
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq
    FROM claimed c JOIN heads h ON h.id = c.outbox_id;
END
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment (one statement, SKIP LOCKED).';

-- A live worker keeps the leases of the events it is still working on (a slow Cal.com must not make a
-- healthy worker lose them); a dead one stops renewing and its leases run out. Only its own leases
-- (calsync.authenticate_worker), and as calsync_worker for at most worker_max_lease at the database's time
-- (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval,
                                               p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.renew_leases', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.renew_leases', p_now, p_lease => coalesce(p_lease, interval '0'));
    UPDATE calsync.outbox_delivery SET locked_until = p_now + p_lease
    WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.renew_leases(text, uuid[], interval, timestamptz) IS
    'Extend the leases a worker still holds on events it is working on; returns how many it still holds.';

-- Leases go back to be retried now when they expired, or when the worker holding them stopped
-- heart-beating in calsync.outbox_listeners (it died): the next try looks the booking up at Cal.com
-- before creating, so nothing is booked twice. As calsync_worker, only at the database's time and after a
-- silence of at least worker_min_dead_after (calsync.enforce_worker_limits): a shorter one, or a time of
-- its own, would take the leases of workers that are alive.
CREATE OR REPLACE FUNCTION calsync.reap_expired_leases(p_now timestamptz DEFAULT now(),
                                                      p_dead_after interval DEFAULT '60 seconds') RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.reap_expired_leases', p_now,
                                          p_dead_after => coalesce(p_dead_after, interval '0'));
    UPDATE calsync.outbox_delivery d
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'lease taken back: the worker holding it stopped or stalled', last_category = 'NETWORK'
    WHERE d.status = 'running'
      AND (d.locked_until < p_now
           OR NOT EXISTS (SELECT 1 FROM calsync.outbox_listeners l
                          WHERE l.worker_id = d.locked_by AND l.heartbeat_at > p_now - p_dead_after));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.reap_expired_leases(timestamptz, interval) IS
    'Return events whose lease expired, or whose worker stopped heart-beating, to the queue, due now; returns how many.';

-- Shutdown: give back the events this worker holds and could not finish; they are due again at once.
-- The attempt still counts, so the next try looks the booking up before creating it. Only its own
-- (calsync.authenticate_worker), at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.release_sync_events(p_worker text, p_outbox_ids uuid[],
                                                      p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.release_sync_events', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.release_sync_events', p_now);
    UPDATE calsync.outbox_delivery
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'released by a stopping worker'
    WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.release_sync_events(text, uuid[], timestamptz) IS
    'Give back events a stopping worker holds; they are due again at once.';

-- A claim whose reply never arrived (the connection died after the commit) leaves leases that a live worker
-- holds without knowing: the reaper would not touch them (the worker heartbeats) until the lease ran out.
-- The worker names what it does hold; everything else it holds is given back, due at once. Only its own
-- (calsync.authenticate_worker), at the database's time (calsync.enforce_worker_limits).
CREATE OR REPLACE FUNCTION calsync.release_unknown_leases(p_worker text, p_held uuid[],
                                                         p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM calsync.authenticate_worker('calsync.release_unknown_leases', p_worker);
    PERFORM calsync.enforce_worker_limits('calsync.release_unknown_leases', p_now);
    UPDATE calsync.outbox_delivery
    SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
        last_error = 'released: the worker lost the reply to its claim'
    WHERE status = 'running' AND locked_by = p_worker AND NOT (outbox_id = ANY (p_held));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION calsync.release_unknown_leases(text, uuid[], timestamptz) IS
    'Give back the leases a worker holds but does not know of (a claim whose reply was lost); due at once.';

-- Retention: delivered events are deleted on delivery; dead ones stay for review until they are older
-- than p_keep; attempts are kept p_keep_attempts. Deletes in batches to keep each transaction short.
-- calsync_worker cannot go below the floors, nor prune at a time of its own (calsync.enforce_worker_limits:
-- dead events >= worker_min_keep_dead, 7 days; attempts >= worker_min_keep_attempts, 30 days); an owner or a
-- superuser may.
CREATE OR REPLACE FUNCTION calsync.prune_sync_history(p_keep interval DEFAULT '30 days',
                                                     p_keep_attempts interval DEFAULT '90 days',
                                                     p_batch integer DEFAULT 5000,
                                                     p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_total integer := 0;
    v_n integer;
BEGIN
    PERFORM calsync.enforce_worker_limits('calsync.prune_sync_history', p_now,
                                          p_keep => coalesce(p_keep, interval '0'),
                                          p_keep_attempts => coalesce(p_keep_attempts, interval '0'));
    WITH old AS (
        SELECT outbox_id FROM calsync.outbox_delivery
        WHERE status = 'dead' AND processed_at < p_now - p_keep LIMIT p_batch
    ), gone AS (
        DELETE FROM calsync.outbox_delivery d USING old WHERE d.outbox_id = old.outbox_id RETURNING d.outbox_id
    )
    DELETE FROM calsync.outbox o USING gone WHERE o.id = gone.outbox_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_total := v_total + v_n;
    DELETE FROM calsync.sync_attempts
    WHERE id IN (SELECT id FROM calsync.sync_attempts WHERE created_at < p_now - p_keep_attempts LIMIT p_batch);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_total + v_n;
END
$$;
COMMENT ON FUNCTION calsync.prune_sync_history(interval, interval, integer, timestamptz) IS
    'Delete dead events older than p_keep and sync attempts older than p_keep_attempts, one batch; returns rows deleted.';

-- name: roles
-- from: sql/grants/roles.sql
-- The three roles and what each may do. Roles are cluster-wide: created only if missing. Applying this file
-- brings any earlier revision's grants to these: what a role must no longer have is revoked here too.
--  calsync_readonly   SELECT on the remediation views, nothing else (the views' helper functions are
--                     SECURITY DEFINER, so no table grant is needed). Where a view shows a person's name or
--                     an error text (which may echo the attendee's name, e-mail or phone), it gets the other
--                     columns only; remediation.failed_syncs is read through a function and so stays whole.
--  calsync_worker     exactly what `calsync worker` needs: read what it syncs, and run the delivery and
--                     listener functions (SECURITY DEFINER), which hold it to its own registered id
--                     (calsync.authenticate_worker), the database's time, a bounded lease and retention floors
--                     (calsync.enforce_worker_limits). It can read no other worker's id or secret: the delivery
--                     and listener tables are not granted; the queue's depth comes from calsync.queue_stats().
--  calsync_remediator the runbook functions (SECURITY DEFINER) and the views in full.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_readonly') THEN
        CREATE ROLE calsync_readonly NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_worker') THEN
        CREATE ROLE calsync_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_remediator') THEN
        CREATE ROLE calsync_remediator NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA remediation TO calsync_readonly, calsync_remediator;
GRANT SELECT ON ALL TABLES IN SCHEMA remediation TO calsync_readonly;
REVOKE SELECT ON remediation.log, remediation.runs, remediation.categories, remediation.failure_diagnoses,
    remediation.customers_missing_contact, remediation.past_unsynced, remediation.stuck_outbox,
    remediation.dead_letters FROM calsync_readonly;
GRANT SELECT ON remediation.categories TO calsync_readonly;
-- without the customer's name (the id finds the customer; the e-mail and phone shown are unusable by definition)
GRANT SELECT (customer_id, email, phone, source, upcoming_appointments) ON remediation.customers_missing_contact
    TO calsync_readonly;
-- without the error texts (Cal.com's answers may echo the attendee): the category and action are the triage
GRANT SELECT (appointment_id, customer_id, starts_at, ends_at, status, calcom_sync_status) ON remediation.past_unsynced
    TO calsync_readonly;
GRANT SELECT (outbox_id, appointment_id, type, created_at, age, status, attempts, next_attempt_at, locked_by,
              locked_until, last_category) ON remediation.stuck_outbox TO calsync_readonly;
GRANT SELECT (outbox_id, appointment_id, type, attempts, last_category, created_at, died_at, recommended_action)
    ON remediation.dead_letters TO calsync_readonly;
GRANT calsync_readonly TO calsync_remediator;
GRANT SELECT ON remediation.customers_missing_contact, remediation.past_unsynced, remediation.stuck_outbox,
    remediation.dead_letters TO calsync_remediator;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA remediation FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remediation.failure_category(bigint), remediation.blocking_cause(bigint),
    remediation.host_conflicts_of(bigint), remediation.failed_syncs_without_jit(),
    remediation.duplicate_bookings_without_jit(), remediation.host_conflicts_without_jit(),
    remediation.composites_without_phases_without_jit() TO calsync_readonly;
GRANT USAGE ON SCHEMA remediation TO calsync_worker;
GRANT EXECUTE ON FUNCTION remediation.host_conflicts_of(bigint) TO calsync_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA remediation TO calsync_remediator;
GRANT SELECT ON remediation.log, remediation.runs TO calsync_remediator;
GRANT INSERT, UPDATE ON remediation.runs TO calsync_remediator;

GRANT USAGE ON SCHEMA calsync TO calsync_worker;
-- it reads what it syncs (sync_state) and the revision it runs against (it refuses to start on another);
-- every change goes through the delivery functions, which are SECURITY DEFINER: it cannot change an
-- appointment itself
GRANT SELECT ON appointments, appointment_phases, customers, services, staff, calcom_event_map, alembic_version
    TO calsync_worker;
GRANT SELECT ON calsync.outbox, calsync.synced_bookings, calsync.superseded_phases, calsync.integrity_issues
    TO calsync_worker;
-- locked_by and worker_id name the other workers, token_hash is their secret's hash: through functions only
REVOKE ALL ON calsync.outbox_delivery, calsync.outbox_listeners FROM calsync_worker;
GRANT EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz),
    calsync.register_listener(text, timestamptz), calsync.heartbeat_listener(text, boolean, timestamptz),
    calsync.remove_listener(text), calsync.queue_stats(timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz),
    calsync.register_listener(text, timestamptz), calsync.heartbeat_listener(text, boolean, timestamptz),
    calsync.remove_listener(text), calsync.queue_stats(timestamptz),
    calsync.caller_is_admin(), calsync.worker_limit(text), calsync.authenticate_worker(text, text),
    calsync.enforce_worker_limits(text, timestamptz, interval, interval, interval, interval) FROM PUBLIC;

-- name: table
ALTER TABLE calsync.outbox_listeners ADD COLUMN token_hash bytea;
COMMENT ON COLUMN calsync.outbox_listeners.token_hash IS
    'SHA-256 of the secret the worker''s sessions present in calsync.worker_token (calsync.authenticate_worker); NULL: registered by an admin without one';

-- name: previous_functions
-- revision 0012's definitions (from revision 0004), as they were
-- Delivery of the outbox: state lives in calsync.outbox_delivery (the outbox itself stays insert-only).
-- SECURITY DEFINER: the worker's role runs these functions and reads what it syncs, nothing more.
-- A delivery row is made by the claim, one per event being worked on; on success the event, every
-- earlier event of the same appointment, and their delivery rows are deleted (the attempts archive in
-- calsync.sync_attempts is the record). Each transition is one function, in the file named after it.

-- Claim up to p_limit events, at most one per appointment: an event is claimable when no earlier event of
-- its appointment is still undelivered (unless dead), and it is new or its retry is due. One statement:
-- FOR UPDATE SKIP LOCKED on the outbox rows, then INSERT … ON CONFLICT DO UPDATE … WHERE status = 'retry'
-- on the delivery row, so a racing claimer can never take an event that is running. covers_seq is the
-- appointment's newest event at claim time: the worker syncs the appointment's current state, which
-- coalesces every event up to it (create then cancel sends nothing; reschedules collapse to the last).
CREATE OR REPLACE FUNCTION calsync.claim_sync_events(p_worker text, p_limit integer, p_lease interval,
                                                    p_now timestamptz DEFAULT now())
RETURNS TABLE (outbox_id uuid, appointment_id bigint, event_type text, attempts integer, covers_seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH heads AS (
        SELECT o.id, o.aggregateid, o.type
        FROM calsync.outbox o
        LEFT JOIN calsync.outbox_delivery d ON d.outbox_id = o.id
        WHERE o.aggregatetype = 'appointment'
          AND (d.outbox_id IS NULL OR (d.status = 'retry' AND d.next_attempt_at <= p_now))
          AND NOT EXISTS (
              SELECT 1 FROM calsync.outbox e LEFT JOIN calsync.outbox_delivery ed ON ed.outbox_id = e.id
              WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND ed.status IS DISTINCT FROM 'dead')
        ORDER BY o.seq
        LIMIT p_limit
        FOR UPDATE OF o SKIP LOCKED
    ), claimed AS (
        INSERT INTO calsync.outbox_delivery AS d
            (outbox_id, aggregateid, status, attempts, locked_by, locked_until, covers_seq, next_attempt_at)
        SELECT h.id, h.aggregateid, 'running', 1, p_worker, p_now + p_lease,
               (SELECT max(x.seq) FROM calsync.outbox x WHERE x.aggregateid = h.aggregateid), p_now
        FROM heads h
        ON CONFLICT ON CONSTRAINT outbox_delivery_pkey DO UPDATE
            SET status = 'running', attempts = d.attempts + 1, locked_by = excluded.locked_by,
                locked_until = excluded.locked_until, covers_seq = excluded.covers_seq
            WHERE d.status = 'retry'
        RETURNING d.outbox_id, d.aggregateid, d.attempts, d.covers_seq
    )
    SELECT c.outbox_id, c.aggregateid::bigint, h.type, c.attempts, c.covers_seq
    FROM claimed c JOIN heads h ON h.id = c.outbox_id
$$;
COMMENT ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz) IS
    'Claim up to p_limit outbox events under a lease, at most one per appointment (one statement, SKIP LOCKED).';

-- A live worker keeps the leases of the events it is still working on (a slow Cal.com must not make a
-- healthy worker lose them); a dead one stops renewing and its leases run out.
CREATE OR REPLACE FUNCTION calsync.renew_leases(p_worker text, p_outbox_ids uuid[], p_lease interval,
                                               p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH renewed AS (
        UPDATE calsync.outbox_delivery SET locked_until = p_now + p_lease
        WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids)
        RETURNING 1
    )
    SELECT count(*)::int FROM renewed
$$;
COMMENT ON FUNCTION calsync.renew_leases(text, uuid[], interval, timestamptz) IS
    'Extend the leases a worker still holds on events it is working on; returns how many it still holds.';

-- Leases go back to be retried now when they expired, or when the worker holding them stopped
-- heart-beating in calsync.outbox_listeners (it died): the next try looks the booking up at Cal.com
-- before creating, so nothing is booked twice.
CREATE OR REPLACE FUNCTION calsync.reap_expired_leases(p_now timestamptz DEFAULT now(),
                                                      p_dead_after interval DEFAULT '60 seconds') RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH reaped AS (
        UPDATE calsync.outbox_delivery d
        SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
            last_error = 'lease taken back: the worker holding it stopped or stalled', last_category = 'NETWORK'
        WHERE d.status = 'running'
          AND (d.locked_until < p_now
               OR NOT EXISTS (SELECT 1 FROM calsync.outbox_listeners l
                              WHERE l.worker_id = d.locked_by AND l.heartbeat_at > p_now - p_dead_after))
        RETURNING 1
    )
    SELECT count(*)::int FROM reaped
$$;
COMMENT ON FUNCTION calsync.reap_expired_leases(timestamptz, interval) IS
    'Return events whose lease expired, or whose worker stopped heart-beating, to the queue, due now; returns how many.';

-- Shutdown: give back the events this worker holds and could not finish; they are due again at once.
-- The attempt still counts, so the next try looks the booking up before creating it.
CREATE OR REPLACE FUNCTION calsync.release_sync_events(p_worker text, p_outbox_ids uuid[],
                                                      p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (
        UPDATE calsync.outbox_delivery
        SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
            last_error = 'released by a stopping worker'
        WHERE status = 'running' AND locked_by = p_worker AND outbox_id = ANY (p_outbox_ids)
        RETURNING 1
    )
    SELECT count(*)::int FROM released
$$;
COMMENT ON FUNCTION calsync.release_sync_events(text, uuid[], timestamptz) IS
    'Give back events a stopping worker holds; they are due again at once.';

-- A claim whose reply never arrived (the connection died after the commit) leaves leases that a live worker
-- holds without knowing: the reaper would not touch them (the worker heartbeats) until the lease ran out.
-- The worker names what it does hold; everything else it holds is given back, due at once.
CREATE OR REPLACE FUNCTION calsync.release_unknown_leases(p_worker text, p_held uuid[],
                                                         p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH released AS (
        UPDATE calsync.outbox_delivery
        SET status = 'retry', next_attempt_at = p_now, locked_by = NULL, locked_until = NULL,
            last_error = 'released: the worker lost the reply to its claim'
        WHERE status = 'running' AND locked_by = p_worker AND NOT (outbox_id = ANY (p_held))
        RETURNING 1
    )
    SELECT count(*)::int FROM released
$$;
COMMENT ON FUNCTION calsync.release_unknown_leases(text, uuid[], timestamptz) IS
    'Give back the leases a worker holds but does not know of (a claim whose reply was lost); due at once.';

-- Retention: delivered events are deleted on delivery; dead ones stay for review until they are older
-- than p_keep; attempts are kept p_keep_attempts. Deletes in batches to keep each transaction short.
CREATE OR REPLACE FUNCTION calsync.prune_sync_history(p_keep interval DEFAULT '30 days',
                                                     p_keep_attempts interval DEFAULT '90 days',
                                                     p_batch integer DEFAULT 5000,
                                                     p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_total integer := 0;
    v_n integer;
BEGIN
    WITH old AS (
        SELECT outbox_id FROM calsync.outbox_delivery
        WHERE status = 'dead' AND processed_at < p_now - p_keep LIMIT p_batch
    ), gone AS (
        DELETE FROM calsync.outbox_delivery d USING old WHERE d.outbox_id = old.outbox_id RETURNING d.outbox_id
    )
    DELETE FROM calsync.outbox o USING gone WHERE o.id = gone.outbox_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_total := v_total + v_n;
    DELETE FROM calsync.sync_attempts
    WHERE id IN (SELECT id FROM calsync.sync_attempts WHERE created_at < p_now - p_keep_attempts LIMIT p_batch);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_total + v_n;
END
$$;
COMMENT ON FUNCTION calsync.prune_sync_history(interval, interval, integer, timestamptz) IS
    'Delete dead events older than p_keep and sync attempts older than p_keep_attempts, one batch; returns rows deleted.';

-- name: drop_functions
DROP FUNCTION calsync.register_listener(text, timestamptz);
DROP FUNCTION calsync.heartbeat_listener(text, boolean, timestamptz);
DROP FUNCTION calsync.remove_listener(text);
DROP FUNCTION calsync.queue_stats(timestamptz);
DROP FUNCTION calsync.authenticate_worker(text, text);
DROP FUNCTION calsync.enforce_worker_limits(text, timestamptz, interval, interval, interval, interval);
DROP FUNCTION calsync.worker_limit(text);
DROP FUNCTION calsync.caller_is_admin();

-- name: previous_roles
-- what this revision granted, revoked; then revision 0012's grants (from revision 0005), as they were
REVOKE SELECT ON remediation.customers_missing_contact, remediation.past_unsynced, remediation.stuck_outbox,
    remediation.dead_letters FROM calsync_readonly, calsync_remediator;
REVOKE SELECT ON alembic_version FROM calsync_worker;
-- The three roles and what each may do. Roles are cluster-wide: created only if missing.
--  calsync_readonly   SELECT on the remediation views, nothing else (the views' helper functions are
--                     SECURITY DEFINER, so no table grant is needed).
--  calsync_worker     exactly what `calsync worker` needs: read the booking tables, write only the sync
--                     columns of appointments and appointment_phases, and run the delivery functions.
--  calsync_remediator the runbook functions (SECURITY DEFINER) and the views.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_readonly') THEN
        CREATE ROLE calsync_readonly NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_worker') THEN
        CREATE ROLE calsync_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'calsync_remediator') THEN
        CREATE ROLE calsync_remediator NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA remediation TO calsync_readonly, calsync_remediator;
GRANT SELECT ON ALL TABLES IN SCHEMA remediation TO calsync_readonly;
REVOKE SELECT ON remediation.log, remediation.runs, remediation.categories, remediation.failure_diagnoses
    FROM calsync_readonly;
GRANT SELECT ON remediation.categories TO calsync_readonly;
GRANT calsync_readonly TO calsync_remediator;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA remediation FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remediation.failure_category(bigint), remediation.blocking_cause(bigint),
    remediation.host_conflicts_of(bigint), remediation.failed_syncs_without_jit(),
    remediation.duplicate_bookings_without_jit(), remediation.host_conflicts_without_jit(),
    remediation.composites_without_phases_without_jit() TO calsync_readonly;
GRANT USAGE ON SCHEMA remediation TO calsync_worker;
GRANT EXECUTE ON FUNCTION remediation.host_conflicts_of(bigint) TO calsync_worker;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA remediation TO calsync_remediator;
GRANT SELECT ON remediation.log, remediation.runs TO calsync_remediator;
GRANT INSERT, UPDATE ON remediation.runs TO calsync_remediator;

GRANT USAGE ON SCHEMA calsync TO calsync_worker;
-- it reads what it syncs (sync_state) and the queue's depth (metrics); every change goes through the
-- delivery functions, which are SECURITY DEFINER: it cannot change an appointment itself
GRANT SELECT ON appointments, appointment_phases, customers, services, staff, calcom_event_map TO calsync_worker;
GRANT SELECT ON calsync.outbox, calsync.outbox_delivery, calsync.synced_bookings, calsync.superseded_phases,
                calsync.integrity_issues TO calsync_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON calsync.outbox_listeners TO calsync_worker;
GRANT EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz) TO calsync_worker;
REVOKE EXECUTE ON FUNCTION calsync.claim_sync_events(text, integer, interval, timestamptz),
    calsync.finish_sync_events(text, jsonb, integer, timestamptz, interval, interval),
    calsync.reap_expired_leases(timestamptz, interval), calsync.release_sync_events(text, uuid[], timestamptz),
    calsync.release_unknown_leases(text, uuid[], timestamptz),
    calsync.renew_leases(text, uuid[], interval, timestamptz),
    calsync.prune_sync_history(interval, interval, integer, timestamptz) FROM PUBLIC;

-- name: drop_table
ALTER TABLE calsync.outbox_listeners DROP COLUMN token_hash;

-- name: drop_settings
DELETE FROM calsync.settings
WHERE key IN ('worker_max_lease', 'worker_min_keep_dead', 'worker_min_keep_attempts', 'worker_min_dead_after');
