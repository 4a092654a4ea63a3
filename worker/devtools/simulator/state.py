"""In-memory state of the simulator: event types, users and their API keys, bookings, and the per-host indexes that
make checks cheap.

- Overlap: per host, the active bookings' `(start_ms, end_ms, uid)` sorted by start. A new interval can only
  collide with entries whose start lies in `(start - longest, end)`, where `longest` is the longest active booking
  the host ever had, so the check is a bisect plus a short scan even with overlapping (allowConflicts) entries.
- Idempotency: `(host user id, start_ms, end_ms)` → uid while the booking is active, as Cal.com's
  `Booking.idempotencyKey` (stamped on create, nulled on cancel/reject).
"""

from __future__ import annotations

import bisect
import itertools

from worker.devtools.simulator.model import (
    ACCOUNT_USER,
    ACTIVE_STATUSES,
    Attendee,
    Booking,
    EventType,
    User,
    iso_ms,
    new_uid,
    now_ms,
)

__all__ = [  # the data classes live in model; these names stay importable from here
    "ACCOUNT_USER",
    "ACTIVE_STATUSES",
    "Attendee",
    "Booking",
    "EventType",
    "Store",
    "User",
    "iso_ms",
    "new_uid",
    "now_ms",
]


class Store:
    """All bookings and event types. Not thread-safe: the simulator runs on one event loop."""

    def __init__(self) -> None:
        self.event_types: dict[int, EventType] = {}
        self.users: dict[int, User] = {}
        self._key_users: dict[str, User] = {}
        self.bookings: dict[str, Booking] = {}
        self._ids = itertools.count(1)
        self._by_host: dict[int, list[tuple[int, int, str]]] = {}
        self._longest: dict[int, int] = {}
        self._idempotency: dict[tuple[int, int, int], str] = {}
        self._by_email: dict[str, list[Booking]] = {}
        self._by_recurring: dict[str, list[Booking]] = {}

    # -- event types ----------------------------------------------------------------------------
    def put_event_types(self, event_types: list[EventType] | tuple[EventType, ...]) -> None:
        for et in event_types:
            self.event_types[et.id] = et

    # -- users ----------------------------------------------------------------------------------
    def put_users(self, users: list[User]) -> None:
        """Register (or replace, by id) users; their API keys then authenticate as them."""
        for user in users:
            old = self.users.pop(user.id, None)
            for key in old.api_keys if old else ():
                self._key_users.pop(key, None)
            self.users[user.id] = user
            for key in user.api_keys:
                self._key_users[key] = user

    def user_for_key(self, key: str) -> User | None:
        return self._key_users.get(key)

    def clear_accounts(self) -> None:
        """Forget event types and users (a reset that starts from an empty Cal.com account)."""
        self.event_types.clear()
        self.users.clear()
        self._key_users.clear()

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
        if booking.recurring_uid is not None:
            self._by_recurring.setdefault(booking.recurring_uid, []).append(booking)
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

    def recurring(self, recurring_uid: str) -> list[Booking]:
        """The occurrences of one recurring booking, by start."""
        return sorted(self._by_recurring.get(recurring_uid, []), key=lambda b: b.start_ms)

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
        self._by_recurring.clear()
