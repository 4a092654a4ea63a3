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
