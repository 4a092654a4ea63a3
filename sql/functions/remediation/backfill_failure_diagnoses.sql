-- Revision 0005's backfill: diagnose the failing appointments after p_after_id, p_batch of them at once.
CREATE OR REPLACE FUNCTION remediation.backfill_failure_diagnoses(p_after_id bigint, p_batch integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id) INTO v_ids
    FROM (SELECT a.id FROM appointments a
          WHERE (a.calcom_sync_status = 'failed' OR a.requires_manual_review) AND a.id > p_after_id
          ORDER BY a.id LIMIT p_batch) AS batch;
    IF v_ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM remediation.diagnose_failures(v_ids);
    RETURN v_ids[cardinality(v_ids)];
END
$$;
COMMENT ON FUNCTION remediation.backfill_failure_diagnoses(bigint, integer) IS
    'Diagnose existing failures in batches (revision 0005); returns the last id done, NULL when there is none left.';
