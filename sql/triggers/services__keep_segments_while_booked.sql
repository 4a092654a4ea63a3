CREATE OR REPLACE TRIGGER services_keep_segments_while_booked
    BEFORE UPDATE OF segments, composite ON services
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_services__keep_segments_while_booked();
