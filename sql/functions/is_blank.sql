-- Blank means nothing but white space, as Unicode (and Python's str.isspace) defines it: ASCII \t \n \v \f \r,
-- the separators U+001C–U+001F, space, NEL U+0085, no-break space U+00A0, U+1680, U+2000–U+200A, the line and
-- paragraph separators U+2028/U+2029, U+202F, U+205F and the ideographic space U+3000. btrim() trims only ' ',
-- so a tab or a no-break space from a copied form field counted as a contact (fuzz finding blank_is_only_spaces).
-- NULL is blank too.
CREATE OR REPLACE FUNCTION calsync.is_blank(p_text text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_text IS NULL
        OR p_text ~ '^[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
$$;
COMMENT ON FUNCTION calsync.is_blank(text) IS
    'NULL, or nothing but Unicode white space (tab, newline, no-break space, ideographic space, ...), not only '' ''.';
