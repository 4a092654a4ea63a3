-- Queries of the admin commands (adopt, demo summary).

-- name: adopt_columns
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = ANY(%(tables)s)
ORDER BY table_name, ordinal_position;
