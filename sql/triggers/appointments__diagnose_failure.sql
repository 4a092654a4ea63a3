CREATE OR REPLACE FUNCTION remediation.tg_appointments__diagnose_failure() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM remediation.diagnose_failures(ARRAY[NEW.id]);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION remediation.tg_appointments__diagnose_failure() IS
    'Trigger appointments_diagnose_failure: diagnose a failure when it is recorded.';

CREATE OR REPLACE TRIGGER appointments_diagnose_failure
    AFTER INSERT OR UPDATE OF calcom_sync_status, requires_manual_review, sync_error_code, sync_error_message
    ON appointments
    FOR EACH ROW WHEN (NEW.calcom_sync_status = 'failed' OR NEW.requires_manual_review)
    EXECUTE FUNCTION remediation.tg_appointments__diagnose_failure();
