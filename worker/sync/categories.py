"""Outcome categories of a sync attempt, and how one HTTP answer maps to one.

The same names are the worker's rows of ``remediation.categories``, which decides whether each retries
(``retryable``), whether it pauses the whole key (``scope = 'key'``), what to do and which runbook step helps;
``calsync.sync_outcome`` reads it. ``RETRYABLE`` and ``KEY_SCOPE`` below mirror those columns for the worker's own
decisions (pausing, looking up); ``tests/test_contract.py`` checks that they agree with the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    OK = "OK"
    PAST_APPOINTMENT = "PAST_APPOINTMENT"
    HOST_UNAVAILABLE = "HOST_UNAVAILABLE"
    VALIDATION = "VALIDATION"
    MISSING_CONTACT = "MISSING_CONTACT"
    COMPOSITE_FAILURE = "COMPOSITE_FAILURE"
    EVENT_TYPE_NOT_FOUND = "EVENT_TYPE_NOT_FOUND"
    CONFIG_MISSING = "CONFIG_MISSING"
    AUTH = "AUTH"
    RATE_LIMITED = "RATE_LIMITED"
    SERVER_ERROR = "SERVER_ERROR"
    NETWORK = "NETWORK"
    CONFLICT = "CONFLICT"
    MALFORMED_RESPONSE = "MALFORMED_RESPONSE"  # a 2xx without a usable booking: Cal.com may have booked
    REDIRECTED = "REDIRECTED"  # a 3xx: a configuration problem of the base URL (never followed with the key)
    ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"  # a 404 "Cannot POST /v2/v2/bookings": the base URL is wrong
    EVENT_TYPE_LENGTH = "EVENT_TYPE_LENGTH"  # no length of the event type is the appointment's (configuration drift)
    RECURRING_EVENT_TYPE = "RECURRING_EVENT_TYPE"  # the event type books a series; an appointment is one booking
    KEY_MISSING = "KEY_MISSING"  # the company has no usable key (own file nor fallback): its syncs are held


RETRYABLE = frozenset(
    {
        Category.AUTH,
        Category.RATE_LIMITED,
        Category.SERVER_ERROR,
        Category.NETWORK,
        Category.CONFLICT,
        Category.MALFORMED_RESPONSE,
        Category.REDIRECTED,  # like AUTH: retried until the configuration (the base URL) is fixed
        Category.ROUTE_NOT_FOUND,
        Category.KEY_MISSING,
    }
)
# Problems of the key or the base URL, not of one appointment: they pause all work of the key (every event stays
# due, no attempt counted) until a probe succeeds.
KEY_SCOPE = frozenset({Category.AUTH, Category.REDIRECTED, Category.ROUTE_NOT_FOUND, Category.KEY_MISSING})
# Outcomes after which the booking may exist at Cal.com although we did not see it succeed: before creating
# again, look it up (and adopt it) instead. A 2xx we could not use may well have booked; so may a 3xx (a 303
# after a POST says it was done).
AMBIGUOUS = frozenset(
    {
        Category.SERVER_ERROR,
        Category.NETWORK,
        Category.CONFLICT,
        Category.MALFORMED_RESPONSE,
        Category.REDIRECTED,
    }
)


@dataclass(frozen=True)
class Verdict:
    category: Category
    message: str
    field: str | None = None

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE


_ROUTE = re.compile(r"^Cannot (GET|POST|PUT|PATCH|DELETE) /")  # Nest's answer for a path no controller serves
_FIELD = re.compile(r"(?:responses - \{(\w+)\})|(?:^|, )(\w+) property is wrong|property (\w+) should not exist")


def error_message(body: object, text: str) -> str:
    """Cal.com's error message from either body shape ({status, error:{message}} or {statusCode, message})."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
        if isinstance(body.get("message"), list):
            return "; ".join(str(m) for m in body["message"])
    return text


def classify(
    status: int | None, body: object, text: str, error: str | None = None, *, location: str | None = None
) -> Verdict:
    """Map one HTTP outcome (or transport error) to a category.

    ``error`` with a status: the body could not be used (cut at the cap, undecodable); ``location``: a redirect's
    target. A 2xx is OK only as Cal.com's success envelope (``{"status": "success", "data": …}``); whether ``data``
    is what was asked for, the client checks (``calcom.shape_problem``).
    """
    if status is None:
        return Verdict(Category.NETWORK, error or "no response")
    message = error_message(body, text) or error or ""
    if 200 <= status < 300:
        if error:
            return Verdict(Category.MALFORMED_RESPONSE, f"HTTP {status}: {error}")
        if not isinstance(body, dict):
            what = "a body that is not JSON" if body is None else "a JSON body that is not an object"
            return Verdict(Category.MALFORMED_RESPONSE, f"HTTP {status} with {what}: {text[:200]}")
        if body.get("status") != "success":
            said = f"HTTP {status} whose status is {body.get('status')!r}, not 'success'"
            return Verdict(Category.MALFORMED_RESPONSE, f"{said}: {message}" if message else said)
        if "data" not in body:
            return Verdict(Category.MALFORMED_RESPONSE, f"HTTP {status} without data")
        return Verdict(Category.OK, "")
    if 300 <= status < 400:
        where = f" to {location}" if location else " without a Location"
        return Verdict(
            Category.REDIRECTED,
            f"HTTP {status}: redirected{where}; redirects are never followed: check the base URL (CALCOM_BASE_URL)",
        )
    if status == 429:
        return Verdict(Category.RATE_LIMITED, message)
    if status in (401, 403):
        return Verdict(Category.AUTH, message)
    if status == 409:
        return Verdict(Category.CONFLICT, message)
    if status >= 500:
        return Verdict(Category.SERVER_ERROR, message)
    if status == 404 and "Event type" in message:
        return Verdict(Category.EVENT_TYPE_NOT_FOUND, message)
    if status == 404 and _ROUTE.match(message):
        return Verdict(
            Category.ROUTE_NOT_FOUND,
            f"{message}: Cal.com has no such route; check the base URL (CALCOM_BASE_URL, with or without /v2)",
        )
    if "in the past" in message:
        return Verdict(Category.PAST_APPOINTMENT, message)
    if "already has booking" in message or "not available" in message:
        return Verdict(Category.HOST_UNAVAILABLE, message)
    if "at least one contact method" in message:
        return Verdict(Category.MISSING_CONTACT, message)
    match = _FIELD.search(message)
    field = next((g for g in match.groups() if g), None) if match else None
    return Verdict(Category.VALIDATION, message, field)
