"""Cal.com's booking rules as plain functions (sources in /work/notes/simulator.md), for the handlers and for
whoever mirrors them: the worker team mirrors `calcom_accepts_email` in SQL and can check it against
`EMAIL_CASES`.

- E-mail: the booking responses schema (packages/features/bookings/lib/getBookingResponsesSchema.ts) checks a
  required e-mail field with `emailSchemaRefinement` (packages/prisma/zod-utils.ts), i.e. `emailSchema` of
  packages/lib/emailSchema.ts: at most 254 characters and
  `/^(?!\\.)(?!.*\\.\\.)([A-Z0-9_+-\\.']*)[A-Z0-9_+'-]@([A-Z0-9][A-Z0-9\\-]*\\.)+[A-Z]{2,}$/i`. In that class
  `+-\\.` is the range `+`..`.`, so a comma is allowed in the local part; `/i` without `/u` folds ASCII letters
  only, and `$` does not match before a trailing newline.
- Phone: libphonenumber's `isValidPhoneNumber` with no default country, after leading spaces became `+`
  (`ensureValidPhoneNumber`). Here `phonenumbers.is_valid_number` (Google's full metadata): national numbers
  fail in both; this check is at least as strict as Cal.com's.
- Length: `end = start + (lengthInMinutes ?? eventType.length)`, `lengthInMinutes` only from the event type's
  `metadata.multipleDuration` (apps/api/v2/src/ee/bookings/2024-08-13/services/input.service.ts).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers

from worker.devtools.simulator.model import EventType, Recurrence

MAX_EMAIL_LENGTH = 254
# Cal.com's emailRegex with its ranges spelled out and /i as explicit a-z / A-Z (ASCII only, as JavaScript folds)
EMAIL_PATTERN = r"(?!\.)(?!.*\.\.)[A-Za-z0-9_+,.'-]*[A-Za-z0-9_+'-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}"
_EMAIL_RE = re.compile(EMAIL_PATTERN, re.ASCII)

LENGTH_NOT_MULTIPLE = (
    "Can't specify 'lengthInMinutes' because event type does not have multiple possible lengths. Please, remove "
    "the 'lengthInMinutes' field from the request."
)
LENGTH_NOT_POSSIBLE = (
    "Provided 'lengthInMinutes' is not one of the possible lengths for the event type. The possible lengths are: "
)
RECURRENCE_COUNT_TOO_HIGH = "Provided recurrence count is higher than the event type's recurring event count."
CANCEL_ENDED = "Cannot cancel a booking that has already ended"

# (address, accepted by Cal.com): the edges of the rule, for tests of a mirror of it
EMAIL_CASES: tuple[tuple[str, bool], ...] = (
    ("ada@example.com", True),
    ("A.Lovelace@Example.CO.UK", True),
    ("first.last+tag@sub.example.de", True),
    ("o'brien@example.ie", True),
    ("o'@example.ie", True),
    ("a,b@example.com", True),  # the +-. range of the first class
    ("-@example.com", True),
    ("a@ex--ample.com", True),
    ("customer_12@placeholder.invalid", True),
    ("4915112345678@sms.cal.com", True),
    ("a" * 64 + "@" + "b" * 185 + ".com", True),  # 254 characters
    ("a" * 64 + "@" + "b" * 186 + ".com", False),  # 255
    ("not-an-email", False),
    ("a.@example.com", False),
    (".a@example.com", False),
    ("a..b@example.com", False),
    ("a,@example.com", False),
    ("a@example", False),
    ("a@b.c", False),
    ("a@example.c0m", False),
    ("a@-example.com", False),
    ("a@exa_mple.com", False),
    ("a@example..com", False),
    ("a@example.com.", False),
    ("a@[127.0.0.1]", False),
    ("a b@example.com", False),
    (" ada@example.com", False),  # nobody trims the attendee's e-mail
    ("ada@example.com ", False),
    ("ada@example.com\n", False),
    ("jürgen@example.de", False),
    ("ada@exämple.de", False),
    ("\u017f@example.com", False),  # long s: JavaScript's /i does not fold it to s
    ("\u212a@example.com", False),  # Kelvin sign, likewise
    ("", False),
)


def calcom_accepts_email(s: str) -> bool:
    """Whether Cal.com's booking responses schema accepts `s` as a required attendee e-mail."""
    return len(s) <= MAX_EMAIL_LENGTH and _EMAIL_RE.fullmatch(s) is not None


def calcom_accepts_phone(s: str) -> bool:
    """Whether the phone passes Cal.com's `isValidPhoneNumber` (here: Google's full metadata, no region)."""
    value = re.sub(r"^ +", "+", s)
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def response_issues(et: EventType, name: str, email: str | None, phone: str | None) -> list[tuple[str, str]]:
    """The booking responses schema's issues (path, message) for the attendee, in the fields' order (name, email,
    attendeePhoneNumber). v2 sends `email: attendee.email ?? ""`; a required field left empty ends the check."""
    issues: list[tuple[str, str]] = []
    if not name:
        return [("responses", "{name}error_required_field")]
    email_value = email if email is not None else ""
    if et.email_required:
        if not email_value:
            return [("responses", "{email}error_required_field")]
        if not calcom_accepts_email(email_value):
            issues.append(("responses", "{email}email_validation_error"))
    # an optional e-mail field is not checked at all ("required ? check : skip")
    if et.phone_field != "hidden":
        required = et.phone_field == "required"
        if required and not phone:
            issues.append(("responses", "{attendeePhoneNumber}error_required_field"))
            return issues
        if phone is not None and (required or phone.strip()) and not calcom_accepts_phone(phone):
            issues.append(("responses", "{attendeePhoneNumber}invalid_number"))
    return issues


def booking_minutes(et: EventType, requested: int | None) -> int | str:
    """The booking's length, or the 400 message when `lengthInMinutes` is not allowed for the event type."""
    if requested is None:
        return et.length_in_minutes
    if not et.length_options:
        return LENGTH_NOT_MULTIPLE
    if requested not in et.length_options:
        return LENGTH_NOT_POSSIBLE + ", ".join(map(str, et.length_options))
    return requested


def occurrence_starts(start_ms: int, time_zone: str, rec: Recurrence, count: int) -> list[int]:
    """Start of each occurrence: Cal.com steps in the attendee's time zone (luxon `plus`), so the wall time is kept
    across a DST change and a month step clamps to the month's last day."""
    local = datetime.fromtimestamp(start_ms / 1000, UTC).astimezone(ZoneInfo(time_zone))
    out = []
    for i in range(count):
        step = i * rec.interval
        if rec.frequency == "weekly":
            when = local + timedelta(weeks=step)
        else:
            months = step * (12 if rec.frequency == "yearly" else 1)
            year, month0 = divmod(local.month - 1 + months, 12)
            day = min(local.day, calendar.monthrange(local.year + year, month0 + 1)[1])
            when = local.replace(year=local.year + year, month=month0 + 1, day=day)
        out.append(int(when.timestamp() * 1000))
    return out
