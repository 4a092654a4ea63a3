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
