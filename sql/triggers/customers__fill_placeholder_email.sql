CREATE OR REPLACE TRIGGER customers_fill_placeholder_email
    BEFORE INSERT OR UPDATE OF email, phone ON customers
    FOR EACH ROW EXECUTE FUNCTION calsync.tg_customers__fill_placeholder_email();
