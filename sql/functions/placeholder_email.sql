-- Contact rules shared by the placeholder-email trigger, the sync state, the worker's guards and the views.

CREATE OR REPLACE FUNCTION calsync.placeholder_email(p_customer_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'customer_' || p_customer_id || '@'
           || coalesce((SELECT value FROM calsync.settings WHERE key = 'placeholder_email_domain'), 'placeholder.invalid')
$$;
COMMENT ON FUNCTION calsync.placeholder_email(bigint) IS
    'customer_<id>@<domain>, the domain from calsync.settings placeholder_email_domain (default placeholder.invalid).';
