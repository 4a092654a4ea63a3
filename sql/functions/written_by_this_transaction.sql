-- Was this row version written by the current transaction, at its top level or in any of its
-- subtransactions that has not been rolled back (SAVEPOINT … RELEASE: Laravel's nested DB::transaction(),
-- SQLAlchemy's begin_nested(), Django's nested atomic())? `xmin = pg_current_xact_id()::xid` sees the top
-- level only: a row written under a savepoint carries the subtransaction's xid.
--  1. No xid assigned: this transaction has written nothing.
--  2. xmin = the top-level xid: ours.
--  3. xmin older than the top-level xid (modulo 2^32): not ours; a subtransaction's xid is always later than
--     its parent's (PostgreSQL assigns the parent's first).
--  4. Otherwise it is a later xid: one of our subtransactions or a transaction that committed since we began.
--     The row is visible to us, so its writer is either us or committed: pg_xact_status() says 'in progress'
--     only for ours (it asks TransactionIdIsCurrentTransactionId, which knows released subtransactions). The
--     xid is widened to xid8 next to the top-level xid. pg_xact_status refuses xids not yet assigned, which
--     only a frozen row's old raw xmin can look like: those are not ours.
-- Like every xmin test, a frozen row whose raw xmin equals one of our running xids modulo 2^32 would count.
CREATE OR REPLACE FUNCTION calsync.written_by_this_transaction(p_xmin xid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_top bigint := pg_current_xact_id_if_assigned()::text::bigint;
    v_later bigint;
    v_xid xid8;
BEGIN
    IF v_top IS NULL OR p_xmin IS NULL THEN
        RETURN false;
    ELSIF p_xmin = (v_top::text)::xid8::xid THEN
        RETURN true;
    END IF;
    v_later := (p_xmin::text::bigint - (v_top & 4294967295)) & 4294967295;
    IF v_later >= 2147483648 THEN
        RETURN false;
    END IF;
    v_xid := (v_top + v_later)::text::xid8;
    IF v_xid < pg_snapshot_xmax(pg_current_snapshot()) THEN
        RETURN pg_xact_status(v_xid) IS NOT DISTINCT FROM 'in progress';  -- assigned before the snapshot: no error
    END IF;
    BEGIN
        RETURN pg_xact_status(v_xid) IS NOT DISTINCT FROM 'in progress';
    EXCEPTION WHEN invalid_parameter_value THEN  -- "transaction ID … is in the future": a frozen row's raw xmin
        RETURN false;
    END;
END
$$;
COMMENT ON FUNCTION calsync.written_by_this_transaction(xid) IS
    'true when a row with this xmin was written by the current transaction, at its top level or under a savepoint that was not rolled back.';
