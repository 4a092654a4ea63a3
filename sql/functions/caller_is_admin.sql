-- Who is calling, seen from inside a SECURITY DEFINER function (where current_user is the owner): the role the
-- session SET ROLE to, else the role it logged in as. Neither can be changed inside such a function, and a
-- session can only SET ROLE to roles it is a member of, so calsync_worker cannot pass for the owner.
-- An admin (a role with the privileges of the calsync schema's owner, or a superuser) is held to no worker
-- limit: tests pass their own time, operators prune below the floors.
CREATE OR REPLACE FUNCTION calsync.caller_is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT pg_has_role(CASE WHEN current_setting('role') = 'none' THEN session_user
                            ELSE current_setting('role')::name END,
                       (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'calsync'), 'USAGE')
$$;
COMMENT ON FUNCTION calsync.caller_is_admin() IS
    'True when the calling session''s role (SET ROLE, else the login role) has the calsync schema owner''s privileges or is a superuser: no worker limit applies.';
