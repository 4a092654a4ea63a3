"""Valid contacts at booking time (revision 0015).

- One e-mail rule, three copies: Cal.com's ``emailSchema`` as the simulator reads it
  (``worker.devtools.simulator.rules.calcom_accepts_email``), the database's ``calsync.is_usable_email`` and the
  worker's ``worker.sync.contacts.calcom_accepts_email`` agree on every edge case and on generated strings.
- ``normalise_phone``: E.164 for a valid number (national formats with the salon's region), else why not.
- The sync state carries the verdict, the placeholder and the salon's settings; the revision goes down to 0014
  exactly and up again.
"""

from __future__ import annotations

import ast
import inspect

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Db
from tests.schema_dump import dump
from worker.devtools.simulator import rules
from worker.ops import migrate
from worker.sync import contacts, contract
from worker.sync.contacts import PhoneProblem, PhoneVerdict, normalise_phone

# -- e-mail: the same rule in SQL, in the worker and in the simulator ------------------------------------------

# characters around the rule's edges: its classes, the separators, whitespace, and letters JavaScript's /i does
# not fold to ASCII (ä, long s, Kelvin sign, dotless i)
EDGE = "aZz09_+,.'-@ \t\n\r" + 'äſ\u212a\u0131\u00a0!#$%&*/=?^`{|}~"()[]<>;:\\'
local_parts = st.text(alphabet=EDGE.replace("@", "") + "abc", max_size=12)
labels = st.text(alphabet="abcXYZ019-_.ä", min_size=0, max_size=10)
tlds = st.text(alphabet="abcdeXYZ09-ä", min_size=0, max_size=5)
shaped = st.builds(lambda lp, d, t: f"{lp}@{d}.{t}", local_parts, labels, tlds)
long_ones = st.builds(
    lambda n, tld: "a" * 64 + "@" + "b" * n + "." + tld, st.integers(180, 192), st.sampled_from(["com", "de", "c0"])
)
emails = st.one_of(shaped, long_ones, st.text(alphabet=EDGE, max_size=24), st.text(max_size=24))
# PostgreSQL text holds no NUL
emails_for_sql = emails.filter(lambda s: "\x00" not in s)


def sql_verdicts(db: Db, values: list[str]) -> list[bool]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT calsync.is_usable_email(v) FROM unnest(%s::text[]) WITH ORDINALITY AS x(v, i) ORDER BY i", [values]
        ).fetchall()
    return [bool(r[0]) for r in rows]


def test_the_three_rules_agree_on_every_edge_case(db: Db) -> None:
    values = [address for address, _ in rules.EMAIL_CASES]
    in_sql = sql_verdicts(db, values)
    for (address, accepted), sql in zip(rules.EMAIL_CASES, in_sql, strict=True):
        assert rules.calcom_accepts_email(address) is accepted, f"the simulator on {address!r}"
        assert contacts.calcom_accepts_email(address) is accepted, f"the worker on {address!r}"
        assert sql is accepted, f"calsync.is_usable_email on {address!r}"


def test_sql_rule_agrees_with_the_simulator_on_generated_strings(db: Db) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(emails_for_sql, min_size=1, max_size=40))
    def check(values: list[str]) -> None:
        for value, sql in zip(values, sql_verdicts(db, values), strict=True):
            assert sql is rules.calcom_accepts_email(value), f"calsync.is_usable_email({value!r})"

    check()


def test_sql_rule_is_false_for_null(db: Db) -> None:
    with db.connect() as conn:
        row = conn.execute("SELECT calsync.is_usable_email(NULL)").fetchone()
    assert row is not None and row[0] is False


@settings(max_examples=2000, deadline=None)
@given(emails)
def test_worker_copy_agrees_with_the_simulator(value: str) -> None:
    assert contacts.calcom_accepts_email(value) is rules.calcom_accepts_email(value)


def test_the_worker_does_not_import_devtools() -> None:
    tree = ast.parse(inspect.getsource(contacts))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith("worker.devtools") for m in imported)


# -- phones -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("030 1234567", "DE", "+49301234567"),  # the national format Cal.com refuses as it is
        ("0171 1234567", "DE", "+491711234567"),
        ("(030) 123-4567", "DE", "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("+49 30 1234567", "DE", "+49301234567"),
        ("+49301234567", "AT", "+49301234567"),  # international: the region plays no part
        ("  030 1234567 ", "de", "+49301234567"),  # whitespace and the region's case
        ("01 234567", "AT", "+431234567"),
        ("+43 1 234567", "DE", "+431234567"),
        ("+49301234567", "XX", "+49301234567"),  # an unknown region is no obstacle to an international number
    ],
)
def test_a_valid_number_becomes_e164(raw: str, region: str, e164: str) -> None:
    verdict = normalise_phone(raw, region)
    assert verdict == PhoneVerdict(e164)
    assert verdict.valid and not verdict.reportable
    assert rules.calcom_accepts_phone(e164), "what is sent passes Cal.com's check (the simulator's)"
    assert not rules.calcom_accepts_phone(raw.strip()) or raw.strip().startswith("+"), (
        "national formats fail as they are"
    )


@pytest.mark.parametrize(
    ("raw", "region", "problem", "reportable"),
    [
        (None, "DE", PhoneProblem.MISSING, False),
        ("", "DE", PhoneProblem.MISSING, False),
        ("   ", "DE", PhoneProblem.MISSING, False),
        ("anonymous_1763495863_2d3eaf7e", "DE", PhoneProblem.ANONYMOUS, False),
        ("anonymous_1763495863", "DE", PhoneProblem.ANONYMOUS, False),
        ("abc", "DE", PhoneProblem.NOT_A_NUMBER, True),
        ("1", "DE", PhoneProblem.NOT_A_NUMBER, True),
        ("123", "DE", PhoneProblem.TOO_SHORT, True),
        ("030", "DE", PhoneProblem.TOO_SHORT, True),
        ("12345", "DE", PhoneProblem.INVALID, True),
        ("030 12", "DE", PhoneProblem.INVALID, True),
        ("030 1234567", "AT", PhoneProblem.INVALID, True),  # valid in DE, not in the salon's country
        ("+1 987 654 3210", "DE", PhoneProblem.INVALID, True),  # an unassigned US area code
        ("+999 123456", "DE", PhoneProblem.INVALID_COUNTRY_CODE, True),
        ("030 1234567", "XX", PhoneProblem.INVALID_COUNTRY_CODE, True),  # national, and no known region
        ("+49 30 1234567890123456", "DE", PhoneProblem.TOO_LONG, True),
    ],
)
def test_anything_else_is_not_sent_and_says_why(
    raw: str | None, region: str, problem: PhoneProblem, reportable: bool
) -> None:
    verdict = normalise_phone(raw, region)
    assert verdict.e164 is None and not verdict.valid
    assert verdict.problem is problem
    assert verdict.reportable is reportable
    assert verdict.reason
    digits = "".join(ch for ch in raw or "" if ch.isdigit())
    assert len(digits) < 4 or digits not in verdict.reason, "the reason never repeats the number"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789 +()-/.", max_size=20), st.sampled_from(["DE", "AT", "CH", "US", "XX"]))
def test_whatever_is_sent_passes_calcoms_check(raw: str, region: str) -> None:
    verdict = normalise_phone(raw, region)
    if verdict.e164 is not None:
        assert rules.calcom_accepts_phone(verdict.e164)
        assert verdict.problem is None and verdict.reason is None
    else:
        assert verdict.problem is not None and verdict.reason


def test_parse_region() -> None:
    assert contacts.parse_region(" de ") == "DE"
    for bad in ("DEU", "D", "XX", "", "1A"):
        with pytest.raises(ValueError, match="ISO 3166"):
            contacts.parse_region(bad)
    assert contacts.parse_region(contacts.DEFAULT_PHONE_REGION) == "DE"


# -- the sync state ---------------------------------------------------------------------------------------------


def test_the_state_carries_the_verdict_the_placeholder_and_the_settings(db: Db) -> None:
    with db.connect() as conn:
        salon = conn.execute("SELECT tests.make_salon()").fetchone()
        assert salon is not None
        s = salon[0]
        klein = conn.execute(
            "SELECT tests.make_customer(%s, 'Frau Klein', 'frau.klein@web', '030 1234567')", [s["company"]]
        ).fetchone()
        assert klein is not None
        ids = [
            conn.execute(
                "SELECT tests.make_appointment(%s, %s, %s, now() + %s * interval '1 day')",
                [customer, s["cut"], s["lena"], days],
            ).fetchone()[0]  # type: ignore[index]
            for customer, days in ((klein[0], 3), (s["customer"], 4))
        ]
        conn.execute(
            "INSERT INTO calsync.company_settings (company_id, phone_region, language) VALUES (%s, 'AT', 'en')",
            [s["company"]],
        )
        docs = conn.execute(
            "SELECT to_jsonb(x)::text FROM calsync.appointment_sync_state(%s) x ORDER BY x.id", [ids]
        ).fetchall()
        conn.commit()
    refused, accepted = (contract.decode_state(str(d[0])) for d in docs)
    assert refused.customer is not None and accepted.customer is not None
    assert refused.customer.email == "frau.klein@web", "the stored e-mail, kept"
    assert not refused.customer.email_accepted and not refused.customer.usable_email
    assert refused.customer.placeholder_email == f"customer_{refused.customer.id}@placeholder.invalid"
    assert accepted.customer.email_accepted and accepted.customer.usable_email
    assert (refused.phone_region, refused.language) == ("AT", "en")
    verdict = normalise_phone(refused.customer.phone, refused.phone_region or contacts.DEFAULT_PHONE_REGION)
    assert verdict.problem is PhoneProblem.INVALID and verdict.reportable, "030 … is not an Austrian number"


# -- the revision -------------------------------------------------------------------------------------------------

# privileges as they act (a NULL ACL is the owner's default; GRANT then REVOKE leaves it spelled out)
GRANTS = """
SELECT 'rel ' || c.oid::regclass::text || ' '
       || (SELECT string_agg(x::text, ',' ORDER BY x::text)
           FROM unnest(coalesce(c.relacl, acldefault('r', c.relowner))) x)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'calsync', 'remediation') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
UNION ALL
SELECT 'col ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || a.attacl::text FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'calsync', 'remediation') AND a.attacl IS NOT NULL
UNION ALL
SELECT 'fn ' || p.oid::regprocedure::text || ' '
       || (SELECT string_agg(x::text, ',' ORDER BY x::text)
           FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) x)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('calsync', 'remediation')
ORDER BY 1
"""


def catalog(db: Db) -> tuple[str, list[str]]:
    with db.connect() as conn:
        grants = [str(r[0]) for r in conn.execute(GRANTS)]
    return dump(db.url), grants


def test_downgrade_restores_0014_exactly_and_keeps_the_data(fresh_db: Db) -> None:
    migrate.upgrade(fresh_db.url, "0014")
    with fresh_db.connect() as conn:
        company = conn.execute("INSERT INTO companies (name) VALUES ('S') RETURNING id").fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO customers (company_id, name, email, phone) VALUES (%s, 'K', 'frau.klein@web', NULL)", [company]
        )
        conn.commit()
    before = catalog(fresh_db)
    migrate.upgrade(fresh_db.url, "0015")
    with fresh_db.connect() as conn:
        conn.execute("INSERT INTO calsync.company_settings (company_id, phone_region) VALUES (%s, 'DE')", [company])
        conn.commit()
    migrate.downgrade(fresh_db.url, "0014")
    after = catalog(fresh_db)
    assert after[0] == before[0], "the schema is 0014's again"
    assert after[1] == before[1], "and so are the grants"
    with fresh_db.connect() as conn:
        emails = [str(r[0]) for r in conn.execute("SELECT email FROM customers ORDER BY id")]
    assert emails == ["frau.klein@web"], "no customer's e-mail changed on the way"
    migrate.upgrade(fresh_db.url, "0015")
    with fresh_db.connect() as conn:
        index = conn.execute(
            "SELECT bool_and(indisvalid) AND count(*) = 2 FROM pg_index WHERE indexrelid IN "
            "('remediation_customers_missing_contact_index'::regclass, "
            "'remediation_customers_invalid_email_index'::regclass)"
        ).fetchone()
        conn.execute("SET enable_seqscan = off")  # read through the index: a stale one would miss the row
        missing = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM customers "
                "WHERE NOT calsync.is_usable_email(email) AND NOT calsync.is_usable_phone(phone)"
            )
        ]
    assert index == (True,), "the partial indexes over the e-mail rule are built (again), valid"
    assert len(missing) == 1, "and holds the refused e-mail by the new rule"
