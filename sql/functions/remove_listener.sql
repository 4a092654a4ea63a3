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
