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
