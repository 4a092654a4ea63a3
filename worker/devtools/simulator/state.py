"""In-memory state of the simulator: event types, bookings, and the per-host indexes that make checks cheap.

- Overlap: per host, the active bookings' `(start_ms, end_ms, uid)` sorted by start. A new interval can only
  collide with entries whose start lies in `(start - longest, end)`, where `longest` is the longest active booking
  the host ever had, so the check is a bisect plus a short scan even with overlapping (allowConflicts) entries.
- Idempotency: `(host user id, start_ms, end_ms)` → uid while the booking is active, as Cal.com's
  `Booking.idempotencyKey` (stamped on create, nulled on cancel/reject).
"""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker.devtools.simulator.errors import FieldError, global_pipe_error, parse_iso_ms

ACTIVE_STATUSES = frozenset({"accepted", "pending"})
_UID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_uid() -> str:
    """A 22-character short uuid like Cal.com's booking uids."""
    n = uuid.uuid4().int
    chars = []
    for _ in range(22):
        n, r = divmod(n, 57)
        chars.append(_UID_ALPHABET[r])
    return "".join(chars)


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds as JavaScript's `Date.toISOString()` writes them."""
    dt = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class EventType:
    id: int
    length_in_minutes: int
    host_user_id: int
    slug: str
    title: str
    host_name: str
    host_email: str
    host_username: str
    host_time_zone: str = "UTC"
    length_options: tuple[int, ...] = ()  # non-empty: the event type has multiple possible lengths

    @classmethod
    def from_json(cls, d: Any) -> EventType:
        """From the admin JSON shape; ValueError with a readable message when malformed."""
        if not isinstance(d, dict):
            raise ValueError("an event type must be an object")

        def integer(name: str, minimum: int) -> int:
            v = d.get(name)
            if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                raise ValueError(f"event type {name} must be an integer >= {minimum}")
            return v

        def text(name: str, default: str) -> str:
            v = d.get(name, default)
            if not isinstance(v, str) or not v:
                raise ValueError(f"event type {name} must be a non-empty string")
            return v

        known = {"id", "lengthInMinutes", "hostUserId", "slug", "title", "hostName", "hostEmail", "hostUsername"}
        known |= {"hostTimeZone", "lengthInMinutesOptions"}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"unknown event type fields: {', '.join(unknown)}")
        et_id, length, host = integer("id", 1), integer("lengthInMinutes", 1), integer("hostUserId", 1)
        options = d.get("lengthInMinutesOptions") or []
        if not isinstance(options, list) or not all(isinstance(o, int) and o >= 1 for o in options):
            raise ValueError("event type lengthInMinutesOptions must be a list of positive integers")
        return cls(
            id=et_id,
            length_in_minutes=length,
            host_user_id=host,
            slug=text("slug", f"event-type-{et_id}"),
            title=text("title", f"{length} min meeting"),
            host_name=text("hostName", f"Host {host}"),
            host_email=text("hostEmail", f"host{host}@example.com"),
            host_username=text("hostUsername", f"host{host}"),
            host_time_zone=text("hostTimeZone", "UTC"),
            length_options=tuple(options),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lengthInMinutes": self.length_in_minutes,
            "hostUserId": self.host_user_id,
            "slug": self.slug,
            "title": self.title,
            "hostName": self.host_name,
            "hostEmail": self.host_email,
            "hostUsername": self.host_username,
            "hostTimeZone": self.host_time_zone,
            "lengthInMinutesOptions": list(self.length_options),
        }


@dataclass(slots=True)
class Attendee:
    name: str
    email: str
    time_zone: str
    language: str = "en"
    phone_number: str | None = None
    absent: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "email": self.email,
            "displayEmail": self.email,
            "timeZone": self.time_zone,
            "language": self.language,
            "absent": self.absent,
        }
        if self.phone_number:
            out["phoneNumber"] = self.phone_number
        return out


@dataclass(slots=True)
class Booking:
    id: int
    uid: str
    event_type: EventType  # a snapshot: re-registering the event type does not change old bookings
    start_ms: int
    end_ms: int
    attendee: Attendee
    title: str
    created_ms: int
    status: str = "accepted"
    description: str = ""
    guests: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    responses: dict[str, Any] = field(default_factory=dict)
    location: str = "integrations:daily"
    meeting_url: str | None = None
    updated_ms: int | None = None
    cancellation_reason: str | None = None
    cancelled_by_email: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by_email: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None

    @property
    def host_user_id(self) -> int:
        return self.event_type.host_user_id

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def to_api(self) -> dict[str, Any]:
        """The booking as GET /v2/bookings/{uid} (2024-08-13) shows it; unset optional fields are left out."""
        et = self.event_type
        out: dict[str, Any] = {
            "id": self.id,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "hosts": [
                {
                    "id": et.host_user_id,
                    "name": et.host_name,
                    "email": et.host_email,
                    "displayEmail": et.host_email,
                    "username": et.host_username,
                    "timeZone": et.host_time_zone,
                }
            ],
            "status": self.status,
        }
        for key, value in (
            ("cancellationReason", self.cancellation_reason),
            ("cancelledByEmail", self.cancelled_by_email),
            ("reschedulingReason", self.rescheduling_reason),
            ("rescheduledByEmail", self.rescheduled_by_email),
            ("rescheduledFromUid", self.rescheduled_from_uid),
            ("rescheduledToUid", self.rescheduled_to_uid),
        ):
            if value is not None:
                out[key] = value
        out.update(
            {
                "start": iso_ms(self.start_ms),
                "end": iso_ms(self.end_ms),
                "duration": (self.end_ms - self.start_ms) // 60_000,
                "eventTypeId": et.id,
                "eventType": {"id": et.id, "slug": et.slug},
                "meetingUrl": self.meeting_url,
                "location": self.location,
                "absentHost": False,
                "createdAt": iso_ms(self.created_ms),
                "updatedAt": iso_ms(self.updated_ms) if self.updated_ms is not None else None,
                "metadata": dict(self.metadata),
                "rating": None,
                "icsUid": f"{self.uid}@Cal.com",
                "attendees": [self.attendee.to_api()],
                "guests": list(self.guests),
                "bookingFieldsResponses": dict(self.responses),
            }
        )
        return out


class Store:
    """All bookings and event types. Not thread-safe: the simulator runs on one event loop."""

    def __init__(self) -> None:
        self.event_types: dict[int, EventType] = {}
        self.bookings: dict[str, Booking] = {}
        self._ids = itertools.count(1)
        self._by_host: dict[int, list[tuple[int, int, str]]] = {}
        self._longest: dict[int, int] = {}
        self._idempotency: dict[tuple[int, int, int], str] = {}
        self._by_email: dict[str, list[Booking]] = {}

    # -- event types ----------------------------------------------------------------------------
    def put_event_types(self, event_types: list[EventType] | tuple[EventType, ...]) -> None:
        for et in event_types:
            self.event_types[et.id] = et

    def event_type_by_slug(self, slug: str, username: str) -> EventType | None:
        for et in self.event_types.values():
            if et.slug == slug and et.host_username == username:
                return et
        return None

    # -- bookings -------------------------------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)

    def conflict(self, host: int, start_ms: int, end_ms: int, ignore_uid: str | None = None) -> str | None:
        """The uid of an active booking of `host` overlapping [start, end), if any."""
        slots = self._by_host.get(host)
        if not slots:
            return None
        i = bisect.bisect_left(slots, (start_ms - self._longest[host], -1, ""))
        while i < len(slots) and slots[i][0] < end_ms:
            _, s_end, s_uid = slots[i]
            if s_end > start_ms and s_uid != ignore_uid:
                return s_uid
            i += 1
        return None

    def idempotency_taken(self, host: int, start_ms: int, end_ms: int) -> bool:
        return (host, start_ms, end_ms) in self._idempotency

    def add(self, booking: Booking) -> None:
        self.bookings[booking.uid] = booking
        self._by_email.setdefault(booking.attendee.email.lower(), []).append(booking)
        if booking.active:
            self._activate(booking)

    def _activate(self, b: Booking) -> None:
        host = b.host_user_id
        bisect.insort(self._by_host.setdefault(host, []), (b.start_ms, b.end_ms, b.uid))
        self._longest[host] = max(self._longest.get(host, 0), b.end_ms - b.start_ms)
        self._idempotency[(host, b.start_ms, b.end_ms)] = b.uid

    def deactivate(self, b: Booking, status: str, at_ms: int) -> None:
        """Move an active booking to `status` (cancelled/rejected): frees its slot and idempotency key."""
        host = b.host_user_id
        slots = self._by_host.get(host, [])
        entry = (b.start_ms, b.end_ms, b.uid)
        i = bisect.bisect_left(slots, entry)
        if i < len(slots) and slots[i] == entry:
            del slots[i]
        if self._idempotency.get((host, b.start_ms, b.end_ms)) == b.uid:
            del self._idempotency[(host, b.start_ms, b.end_ms)]
        b.status = status
        b.updated_ms = at_ms

    def by_attendee_email(self, email: str) -> list[Booking]:
        return self._by_email.get(email.lower(), [])

    def counts(self) -> dict[str, int]:
        active = sum(len(v) for v in self._by_host.values())
        return {"total": len(self.bookings), "active": active, "inactive": len(self.bookings) - active}

    def clear_bookings(self) -> None:
        self.bookings.clear()
        self._by_host.clear()
        self._longest.clear()
        self._idempotency.clear()
        self._by_email.clear()


# -- GET /v2/bookings -------------------------------------------------------------------------------------------
LIST_STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
_DATE_FILTERS = ("afterStart", "beforeEnd", "afterCreatedAt", "beforeCreatedAt", "afterUpdatedAt", "beforeUpdatedAt")
_SORTS = {"sortStart": "start_ms", "sortEnd": "end_ms", "sortCreated": "created_ms", "sortUpdatedAt": "updated_ms"}


@dataclass
class ListQuery:
    statuses: tuple[str, ...] = ()
    attendee_email: str | None = None
    attendee_name: str | None = None
    booking_uid: str | None = None
    event_type_ids: tuple[int, ...] = ()
    dates: dict[str, int] = field(default_factory=dict)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (Booking attribute, descending)
    take: int = 100
    skip: int = 0


def parse_list_query(q: Mapping[str, str], path: str) -> ListQuery:
    """GetBookingsInput_2024_08_13 through the global ValidationPipe; unknown parameters are dropped."""
    errs: list[FieldError] = []
    out = ListQuery()

    def bad(prop: str, constraint: str, message: str) -> None:
        errs.append(FieldError(prop, {constraint: message}, value=q.get(prop)))

    if status := q.get("status"):
        out.statuses = tuple(s.strip() for s in status.split(",") if s.strip())
        if any(s not in LIST_STATUSES for s in out.statuses):
            bad(
                "status",
                "isEnum",
                f"each value in status must be one of the following values: {', '.join(LIST_STATUSES)}",
            )
    if email := q.get("attendeeEmail"):
        out.attendee_email = email.replace(" ", "+")
    out.attendee_name = q.get("attendeeName") or None
    out.booking_uid = q.get("bookingUid") or None
    for prop in ("eventTypeId", "eventTypeIds"):
        values = [v.strip() for v in (q.get(prop) or "").split(",") if v.strip()]
        if not all(v.lstrip("-").isdigit() for v in values):
            each = "each value in " if prop == "eventTypeIds" else ""
            bad(prop, "isInt", f"{each}{prop} must be an integer number")
        else:
            out.event_type_ids += tuple(int(v) for v in values)
    for prop in _DATE_FILTERS:
        if (text := q.get(prop)) is not None:
            if (ms := parse_iso_ms(text)) is None:
                bad(prop, "isDateString", f"{prop} must be a valid ISO 8601 date string")
            else:
                out.dates[prop] = ms
    for prop, attr in _SORTS.items():
        if (order := q.get(prop)) is not None:
            if order not in ("asc", "desc"):
                bad(prop, "isEnum", f"{prop} must be one of the following values: asc, desc")
            out.sorts.append((attr, order == "desc"))
    for prop, low, high in (("take", 1, 250), ("skip", 0, None)):
        if (text := q.get(prop)) is not None:
            if not text.lstrip("-").isdigit():
                bad(prop, "isInt", f"{prop} must be an integer number")
            elif int(text) < low:
                bad(prop, "min", f"{prop} must not be less than {low}")
            elif high is not None and int(text) > high:
                bad(prop, "max", f"{prop} must not be greater than {high}")
            else:
                setattr(out, prop, int(text))
    if errs:
        raise global_pipe_error(errs, path)
    return out


def _status_match(b: Booking, statuses: tuple[str, ...], now: int) -> bool:
    for s in statuses:
        if s == "upcoming" and b.active and b.end_ms >= now:
            return True
        if s == "past" and b.active and b.end_ms <= now:
            return True
        if s == "cancelled" and not b.active:
            return True
        if s == "unconfirmed" and b.status == "pending" and b.end_ms >= now:
            return True
    return False  # "recurring": the simulator has no recurring bookings


def run_list_query(store: Store, q: ListQuery, now: int) -> tuple[list[Booking], int]:
    """The page of bookings (after filters, sorting, skip/take) and the total number of matches."""
    pool = store.by_attendee_email(q.attendee_email) if q.attendee_email else store.bookings.values()
    d = q.dates
    found = [
        b
        for b in pool
        if (not q.statuses or _status_match(b, q.statuses, now))
        and (q.attendee_name is None or b.attendee.name == q.attendee_name)
        and (q.booking_uid is None or b.uid == q.booking_uid)
        and (not q.event_type_ids or b.event_type.id in q.event_type_ids)
        and b.start_ms >= d.get("afterStart", b.start_ms)
        and b.end_ms <= d.get("beforeEnd", b.end_ms)
        and b.created_ms >= d.get("afterCreatedAt", b.created_ms)
        and b.created_ms <= d.get("beforeCreatedAt", b.created_ms)
        and (b.updated_ms or b.created_ms) >= d.get("afterUpdatedAt", b.updated_ms or b.created_ms)
        and (b.updated_ms or b.created_ms) <= d.get("beforeUpdatedAt", b.updated_ms or b.created_ms)
    ]
    found.sort(key=lambda b: (b.start_ms, b.id))
    for attr, desc in reversed(q.sorts):
        found.sort(key=lambda b: getattr(b, attr) or b.created_ms, reverse=desc)
    return found[q.skip : q.skip + q.take], len(found)


def pagination(skip: int, take: int, total: int) -> dict[str, Any]:
    """apps/api/v2/src/lib/pagination/pagination.ts."""
    safe_skip = max(0, min(skip, total))
    total_pages = -(-total // take) if take else 0
    current = 0 if total_pages == 0 else max(1, min(safe_skip // take + 1, total_pages))
    return {
        "itemsReturned": max(0, min(total - safe_skip, take)),
        "totalItems": total,
        "itemsPerPage": take,
        "remainingItems": max(0, min(total - (safe_skip + take), total)),
        "currentPage": current,
        "totalPages": total_pages,
        "hasNextPage": safe_skip + take < total,
        "hasPreviousPage": safe_skip > 0,
    }
