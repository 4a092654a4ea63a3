"""Customers: any name, e-mail and phone, and later contact changes. Each write is refused only by a rule
its input breaks (the global unique e-mail, a column's length, NOT NULL) or stores exactly the input,
except the documented change: a customer without a usable contact gets customer_<id>@placeholder.invalid
and the flag, a blank e-mail becomes NULL, a real e-mail replaces the placeholder."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from psycopg import sql

from tests.properties import oracle
from tests.properties.conftest import Base
from tests.properties.harness import STATS, Conn, Failure, attempt, example, fuzz_settings, value
from tests.properties.strategies import OWN_PLACEHOLDER, contact_updates, emails, names, phones

PROP = "customers"

FLAG_WITHOUT_PLACEHOLDER = """
SELECT id FROM customers
WHERE email_is_placeholder AND email IS DISTINCT FROM 'customer_' || id || '@placeholder.invalid'
"""


def _stored(v: str | None) -> str | None:
    try:
        return oracle.varchar(v, 255)
    except oracle.TooLong:
        return None


def _too_long(*values: str | None) -> bool:
    try:
        for v in values:
            oracle.varchar(v, 255)
    except oracle.TooLong:
        return True
    return False


def _justified(conn: Conn, failure: Failure, would_store: set[str | None], inputs: dict[str, Any]) -> bool:
    """Does the input really break the rule the write was refused with?"""
    if failure.stage != "statement":
        return False
    if (failure.sqlstate, failure.constraint) == ("23505", "customers_email_unique"):
        # the e-mail the row would have stored (its placeholder too: the id it drew is currval) is taken
        placeholder = oracle.placeholder_email(value(conn, "SELECT currval('customers_id_seq')"))
        candidates = {e.replace(OWN_PLACEHOLDER, placeholder) for e in would_store if e is not None}
        return bool(value(conn, "SELECT EXISTS (SELECT 1 FROM customers WHERE email = ANY(%s))", [sorted(candidates)]))
    if failure.sqlstate == "22001" and failure.constraint is None:
        return _too_long(*inputs.values())
    if failure.sqlstate == "23502" and failure.column == "name":
        return "name" in inputs and inputs["name"] is None
    return False


def _check_contact(
    conn: Conn, cid: int, email: str | None, phone: str | None, old: oracle.Contact | None, row: tuple[Any, ...]
) -> oracle.Contact:
    """The stored contact is the rule's outcome."""
    actual = oracle.Contact(row[0], row[2])
    assert row[1] == phone, f"customer {cid}: phone {phone!r} stored as {row[1]!r}"
    intended = oracle.contact_outcome(cid, email, phone, old)
    assert actual == intended, (
        f"customer {cid}: e-mail {email!r}, phone {phone!r} (before: {old}) stored as {actual}, "
        f"the rule says {intended}"
    )
    assert conn.execute(FLAG_WITHOUT_PLACEHOLDER).fetchall() == [], "a flagged e-mail that is not the placeholder"
    return actual


@fuzz_settings(PROP)
@given(name=names, email=emails, phone=phones, updates=contact_updates)
def test_customer_contact_rule(
    fx: Conn, base: Base, name: str | None, email: str | None, phone: str | None, updates: list[tuple[str, Any]]
) -> None:
    STATS.cases[PROP] += 1
    with example(fx):
        rows, failure = attempt(
            fx,
            "INSERT INTO customers (company_id, name, email, phone) VALUES (%s, %s, %s, %s) "
            "RETURNING id, name, email, phone, email_is_placeholder",
            [base.company, name, email, phone],
        )
        if failure is not None:
            would = {_stored(email), OWN_PLACEHOLDER}
            assert _justified(fx, failure, would, {"name": name, "email": email, "phone": phone}), str(failure)
            STATS.record(PROP, f"insert refused: {failure.rule}")
            return
        cid, stored_name = rows[0][0], rows[0][1]
        assert not _too_long(name, email, phone), f"over-long input accepted: {rows[0]}"
        assert stored_name == _stored(name), f"name {name!r} stored as {stored_name!r}"
        contact = _check_contact(fx, cid, _stored(email), _stored(phone), None, rows[0][2:])
        STATS.record(PROP, "insert: placeholder" if contact.placeholder else "insert: kept")
        stored_phone = _stored(phone)
        for kind, arg in updates:
            new_email, new_phone = arg if kind == "both" else (arg, None) if kind == "email" else (None, arg)
            if new_email == OWN_PLACEHOLDER:
                new_email = oracle.placeholder_email(cid)
            sets = {"email": [new_email], "phone": [new_phone], "both": [new_email, new_phone]}[kind]
            cols = {"email": "email = %s", "phone": "phone = %s", "both": "email = %s, phone = %s"}[kind]
            query = sql.SQL("UPDATE customers SET {} WHERE id = %s RETURNING email, phone, email_is_placeholder")
            rows, failure = attempt(fx, query.format(sql.SQL(cols)), [*sets, cid])
            if failure is not None:
                inputs = {"email": new_email, "phone": new_phone}
                would = {_stored(new_email) if kind != "phone" else contact.email, OWN_PLACEHOLDER}
                assert _justified(fx, failure, would, inputs), str(failure)
                STATS.record(PROP, f"update refused: {failure.rule}")
                continue
            after_email = _stored(new_email) if kind != "phone" else contact.email
            stored_phone = _stored(new_phone) if kind != "email" else stored_phone
            contact = _check_contact(fx, cid, after_email, stored_phone, contact, rows[0])
            STATS.record(PROP, "update: placeholder" if contact.placeholder else "update: kept")
