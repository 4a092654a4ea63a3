-- A starting worker registers its id under the secret its sessions present (calsync.worker_token), busy:
-- its first heartbeat (calsync.heartbeat_listener).
CREATE OR REPLACE FUNCTION calsync.register_listener(p_worker text, p_now timestamptz DEFAULT now()) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT calsync.heartbeat_listener(p_worker, false, p_now)
$$;
COMMENT ON FUNCTION calsync.register_listener(text, timestamptz) IS
    'Register a starting worker (busy) under the session''s calsync.worker_token: its first heartbeat.';
