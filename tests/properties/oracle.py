"""The rules restated in Python from their documentation (README's Migrations table, domain.md §2-3, the
comments in sql/), not from the SQL that enforces them: what a write must leave behind, and which
refusals its input justifies. ``KNOWN_BUGS`` lists where the database is known to do otherwise; each has
a strict xfail test in test_regressions.py and a section in /work/notes/fuzz.md.

Three PostgreSQL primitives are modelled as PostgreSQL documents them, since the rules sit on top of
them: varchar(n) assignment (an over-long value is refused unless the excess is spaces, which are cut),
boolean input (``boolin``) and numeric rounding (half away from zero).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

INT4_MAX = 2**31 - 1
# timestamptz's range as epoch seconds: 4714-11-24 00:00 BC .. 294276-12-31 23:59:59.999999 UTC
TS_MIN_EPOCH = Decimal(-210866803200)
TS_MAX_EPOCH = Decimal("9224318015999.999999")
INF = Decimal("Infinity")

STATUSES = ("pending", "confirmed", "scheduled", "booked", "in_progress", "completed", "cancelled", "no_show")
NOT_LIVE = ("cancelled", "no_show")
BOOKABLE = ("pending", "confirmed", "scheduled", "booked")
PLACEHOLDER_DOMAIN = "placeholder.invalid"

KNOWN_BUGS: dict[str, str] = {}  # none open: blank_is_only_spaces was fixed in revision 0024

_SPACE = " \t\n\r\f\v"  # PostgreSQL's ASCII isspace(); strategies keep non-ASCII spaces out of numbers
_NUMBER = re.compile(r"^[ \t\n\r\f\v]*[0-9]+(\.[0-9]+)?[ \t\n\r\f\v]*$")


class TooLong(Exception):
    """varchar(n) refuses the value (SQLSTATE 22001)."""


def varchar(value: str | None, n: int) -> str | None:
    """What a varchar(n) column stores for ``value`` (raises TooLong where PostgreSQL raises 22001)."""
    if value is None or len(value) <= n:
        return value
    if value[n:].strip(" ") == "":
        return value[:n]
    raise TooLong(f"{len(value)} characters for varchar({n})")


# ---------------------------------------------------------------- contact: the placeholder e-mail rule


def blank(value: str) -> bool:
    """Blank as a person reads it: nothing but whitespace (any Unicode whitespace)."""
    return value.strip() == ""


def anonymous(phone: str) -> bool:
    """The voice agent's stand-in (``anonymous_<ts>_<hex>``, or ``anonymous_<ts>``), whitespace aside."""
    return phone.strip().startswith("anonymous")


@dataclass(frozen=True)
class Contact:
    email: str | None
    placeholder: bool


def placeholder_email(customer_id: int) -> str:
    return f"customer_{customer_id}@{PLACEHOLDER_DOMAIN}"


def contact_outcome(
    customer_id: int,
    email: str | None,
    phone: str | None,
    old: Contact | None = None,
) -> Contact:
    """README 0006 / sql comment: a customer saved with no usable e-mail and no usable phone gets
    customer_<id>@<domain> and the flag; a real e-mail replaces it and clears the flag (an unchanged
    placeholder keeps it); blank e-mails become NULL. ``email``/``phone`` are the stored (varchar) values."""
    if email is not None and blank(email):
        email = None
    own = placeholder_email(customer_id)
    if email is not None:
        retained = old is not None and old.placeholder and email == old.email
        return Contact(email, email == own or retained)
    if phone is not None and not blank(phone) and not anonymous(phone):
        return Contact(None, False)
    return Contact(own, True)


# ---------------------------------------------------------------- segments -> phases (domain.md §3)


@dataclass(frozen=True)
class Element:
    """One entry of services.segments as text, the way the JSON reads (``->>``)."""

    idx: int
    typ: str  # jsonb_typeof
    key: str | None = None
    name: str | None = None
    duration_min: str | None = None
    duration_minutes: str | None = None
    duration: str | None = None
    order: str | None = None
    gap_after: str | None = None
    type: str | None = None
    staff_required: str | None = None


@dataclass(frozen=True)
class Segments:
    typ: str | None  # None: SQL NULL; else jsonb_typeof of the whole value
    elements: tuple[Element, ...] = ()


@dataclass(frozen=True)
class Phase:
    sequence_order: int
    phase_type: str
    segment_name: str | None
    segment_key: str | None
    start_offset: int
    duration: int
    staff_required: bool


@dataclass
class Derivation:
    """What a live composite appointment of these segments gets at commit: phases, or (``problem``) a
    flag; ``bugs`` names the known bugs the database hits instead, with the SQLSTATE each raises."""

    problem: str | None = None
    phases: tuple[Phase, ...] = ()
    bugs: dict[str, str] = field(default_factory=dict)  # SQLSTATE -> known bug


_TRUE = ("true", "yes", "on")
_FALSE = ("false", "no", "off")


def pg_bool(text: str) -> bool | None:
    """PostgreSQL's boolean input: a prefix of true/yes/false/no (on/off from 2 letters), 1 or 0, case and
    surrounding whitespace aside. None when PostgreSQL refuses it (22P02)."""
    s = text.strip(_SPACE).lower()
    if s in ("1", "0"):
        return s == "1"
    if not s or (s[0] == "o" and len(s) < 2):
        return None
    if any(w.startswith(s) for w in _TRUE):
        return True
    if any(w.startswith(s) for w in _FALSE):
        return False
    return None


def _minutes(text: str | None, bugs: dict[str, str]) -> int | None:
    """A segment's minutes under a key: a number or numeric string, rounded; None otherwise. Any size:
    beyond integer range the segments are unusable (segments_problem)."""
    if text is None or not _NUMBER.match(text):
        return None
    return int(Decimal(text.strip(_SPACE)).to_integral_value(rounding=ROUND_HALF_UP))  # any size, exactly


def _duration(e: Element, bugs: dict[str, str]) -> int | None:
    """durationMin (live shape), else duration_minutes, else duration (legacy admin shape)."""
    for text in (e.duration_min, e.duration_minutes, e.duration):
        value = _minutes(text, bugs)
        if value is not None:
            return value
    return None


def segments_problem(segments: Segments, bugs: dict[str, str]) -> str | None:
    if segments.typ is None or segments.typ == "null":
        return "no segments"
    if segments.typ != "array":
        return "not an array"
    if not segments.elements:
        return "empty"
    total = 0
    for e in segments.elements:  # in order, up to the first bad one (the one named)
        if e.typ != "object":
            return f"element {e.idx} is not an object"
        duration = _duration(e, bugs) or 0
        if duration <= 0 or duration > INT4_MAX:
            return f"element {e.idx} has no positive duration within integer range"
        if (_minutes(e.order, bugs) or 0) > INT4_MAX:
            return f"element {e.idx} has an order beyond integer range"
        gap = _minutes(e.gap_after, bugs) or 0
        if gap > INT4_MAX:
            return f"element {e.idx} has a gap_after beyond integer range"
        total += duration + gap
    if total > INT4_MAX:
        return "the total of durations and gaps is beyond integer range"
    return None


def derive(segments: Segments) -> Derivation:
    """domain.md §3 (createPhasesFromSegments) plus calsync's reading of the legacy shape: sort by order
    (missing = 0, then position), duration from durationMin / duration_minutes / duration, processing
    segments need no staff, staff_required otherwise (default true), gap_after > 0 adds a processing
    phase ``<key>_gap``, offsets accumulate, sequence from 1, the first active phase is initial."""
    d = Derivation()
    d.problem = segments_problem(segments, d.bugs)
    if d.problem is not None or d.bugs:
        return d
    rows: list[tuple[int, int, int, str | None, str | None, int, bool, bool]] = []
    for e in segments.elements:
        order = _minutes(e.order, d.bugs) or 0
        minutes = _duration(e, d.bugs) or 0
        processing = e.type == "processing"
        staff = True
        if not processing and e.staff_required is not None:
            staff = pg_bool(e.staff_required) is not False  # no boolean literal: the default, true
        key, name = _cut(e.key, 50), _cut(e.name, 255)  # cut to the phase columns
        rows.append((order, e.idx, 0, key, name, minutes, processing, staff and not processing))
        gap = _minutes(e.gap_after, d.bugs) or 0
        if gap > 0:
            key = (e.key if e.key is not None else f"#{e.idx}")[:46] + "_gap"  # keeps its suffix
            rows.append((order, e.idx, 1, key, (e.name or "")[:241] + " (Einwirkzeit)", gap, True, False))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    phases = []
    offset = 0
    for n, (_, _, _, key, name, minutes, processing, staff) in enumerate(rows, start=1):
        kind = "processing" if processing else ("initial" if n == 1 else "final")
        phases.append(Phase(n, kind, name, key, offset, minutes, staff))
        offset += minutes
    d.phases = tuple(phases)
    return d


def shifted(start: Decimal, minutes: int) -> Decimal:
    """timestamptz + minutes, as epoch seconds (infinity stays infinite)."""
    return start if start.is_infinite() else start + 60 * minutes


def phases_out_of_range(start: Decimal, phases: tuple[Phase, ...]) -> bool:
    """Phases placed at ``start`` that end beyond timestamptz's range: refused by the rule
    appointment_phases_within_time_range."""
    return not start.is_infinite() and any(shifted(start, p.start_offset + p.duration) > TS_MAX_EPOCH for p in phases)


def _cut(value: str | None, n: int) -> str | None:
    """left(value, n): a segment text cut to its phase column."""
    return None if value is None else value[:n]


# ---------------------------------------------------------------- the outbox (README: Enqueue with the booking)


def outbox_event(old_status: str | None, new_status: str, moved: bool, marked_origin: str | None) -> str | None:
    """The event an insert (old_status None) or an update enqueues: create on a bookable insert; cancel
    on cancelling; create on becoming bookable again; reschedule on a move (start, staff, service) while
    bookable. A write that marks the row as coming from Cal.com (``marked_origin``: the sync_origin an insert
    gives or an update changes to) never enqueues; the app's later changes of such a row do."""
    if marked_origin == "calcom":
        return None
    if old_status is None:
        return "create" if new_status in BOOKABLE else None
    if new_status == "cancelled" and old_status != "cancelled":
        return "cancel"
    if new_status in BOOKABLE and old_status not in BOOKABLE:
        return "create"
    if new_status in BOOKABLE and moved:
        return "reschedule"
    return None
