"""What happens to bookings, in Cal.com's order of checks: create (one booking, or one per occurrence of a
recurring event type), cancel, reschedule through the API, and the outside changes (an attendee or host moving or
cancelling a booking in Cal.com's own pages). Raises `ApiError` with Cal.com's status and body; HTTP is app's.

A reschedule, from the API or from outside, is Cal.com's handleNewBooking with a rescheduleUid
(packages/features/bookings/lib/handleNewBooking/createBooking.ts): a new booking with a new uid carrying over
the metadata, responses, attendee, location, description and iCalUID, `rescheduledFromUid` the old uid; the old
one is cancelled with `rescheduledToUid`. Through the API its length is the event type's length
(input.service.ts `transformInputRescheduleBooking`: `start + eventType.length`), not the old booking's.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

from worker.devtools.simulator import errors, rules
from worker.devtools.simulator.errors import JSON, CreateInput, bad_request, not_found
from worker.devtools.simulator.model import Attendee, Booking, EventType, User, new_uid, now_ms
from worker.devtools.simulator.state import Store

PAST_MESSAGE = "Attempting to book a meeting in the past."
BUSY_MESSAGE = "User either already has booking at this time or is not available"
TEAM_BUSY_MESSAGE = "One of the hosts either already has booking at this time or is not available"
HOST_REASON_MESSAGE = "Cancellation reason is required when you are the host"
RECURRING_UID_SUBSEQUENT = (
    "Cannot cancel subsequent bookings for recurring event - you have to provide uid of one of the individual "
    "bookings of a recurring booking."
)


Listener = Callable[[str, Booking, Booking | None], None]  # (trigger, booking, the booking a reschedule moved)


class Bookings:
    def __init__(self, store: Store, clock_offset_s: float = 0.0) -> None:
        self.store = store
        self.clock_offset_ms = round(clock_offset_s * 1000)
        self.listeners: list[Listener] = []  # told of every change, after it is stored (the webhooks)

    def _emit(self, trigger: str, booking: Booking, previous: Booking | None = None) -> None:
        for listener in self.listeners:
            listener(trigger, booking, previous)

    def now(self) -> int:
        """The simulator's now: the real time plus the configured clock offset."""
        return now_ms() + self.clock_offset_ms

    # -- create ---------------------------------------------------------------------------------
    def event_type_for(self, inp: CreateInput, path: str) -> EventType:
        if inp.event_type_id is not None:
            found = self.store.event_types.get(inp.event_type_id)
            if found is None:
                raise not_found(f"Event type with id {inp.event_type_id} not found.", path)
            return found
        if inp.team_slug:
            raise not_found(
                f"Event type with slug {inp.event_type_slug} belonging to team {inp.team_slug} not found.", path
            )
        found = self.store.event_type_by_slug(inp.event_type_slug or "", inp.username or "")
        if found is None:
            raise not_found(
                f"Event type with slug {inp.event_type_slug} belonging to user {inp.username} not found.", path
            )
        return found

    def create(self, inp: CreateInput, caller: User | None, path: str, recurring: bool = True) -> list[Booking]:
        """The stored booking(s): one per occurrence when the event type recurs (and `recurring`)."""
        et = self.event_type_for(inp, path)
        minutes = rules.booking_minutes(et, inp.length)
        if isinstance(minutes, str):
            raise bad_request(minutes, path)
        starts, recurring_uid = [inp.start_ms], None
        if recurring and et.recurrence is not None:
            if inp.recurrence_count and inp.recurrence_count > et.recurrence.occurrences:
                raise bad_request(rules.RECURRENCE_COUNT_TOO_HIGH, path)
            count = inp.recurrence_count or et.recurrence.occurrences
            zone = errors.canonical_time_zone(inp.time_zone)
            starts, recurring_uid = rules.occurrence_starts(inp.start_ms, zone, et.recurrence, count), str(uuid.uuid4())
        if issues := rules.response_issues(et, inp.name, inp.email, inp.phone):
            raise errors.zod(path, issues)
        now, span = self.now(), minutes * 60_000
        allow_conflicts = caller is not None and caller.hosts(et) and inp.allow_conflicts
        for start in starts:
            self.check_slot(et, start, start + span, now, path, allow_conflicts)
        made = [self._store_new(inp, et, start, start + span, now, recurring_uid) for start in starts]
        for b in made:  # handleNewBooking runs once per occurrence
            self._emit("BOOKING_CREATED", b)
        return made

    def _store_new(
        self, inp: CreateInput, et: EventType, start: int, end: int, now: int, recurring_uid: str | None
    ) -> Booking:
        phone = inp.phone or None
        email = inp.email or re.sub(r"\D", "", phone or "") + "@sms.cal.com"
        responses: JSON = {"name": inp.name, "email": email}
        if phone:
            responses["attendeePhoneNumber"] = phone
        responses["guests"] = list(inp.guests)
        responses.update(inp.responses)
        uid = new_uid()
        location = _location(inp.location)
        notes = inp.responses.get("notes")
        booking = Booking(
            id=self.store.next_id(),
            uid=uid,
            event_type=et,
            start_ms=start,
            end_ms=end,
            attendee=Attendee(inp.name, email, inp.time_zone, inp.language, phone),
            title=f"{et.title} between {et.host_name} and {inp.name}",
            created_ms=now,
            description=notes if isinstance(notes, str) else "",
            guests=list(inp.guests),
            metadata=dict(inp.metadata),
            responses=responses,
            location=location,
            meeting_url=inp.meeting_url
            or (f"https://app.cal.com/video/{uid}" if location == "integrations:daily" else None),
            recurring_uid=recurring_uid,
        )
        self.store.add(booking)
        return booking

    def check_slot(
        self,
        et: EventType,
        start: int,
        end: int,
        now: int,
        path: str,
        allow_conflicts: bool,
        moving: Booking | None = None,
    ) -> None:
        host = et.host_user_id
        if start < now:
            raise bad_request(PAST_MESSAGE, path)
        if not allow_conflicts and self.store.conflict(host, start, end, moving.uid if moving else None):
            raise bad_request(TEAM_BUSY_MESSAGE if et.team_id is not None else BUSY_MESSAGE, path)
        same_slot = moving is not None and (moving.start_ms, moving.end_ms) == (start, end)
        if not same_slot and self.store.idempotency_taken(host, start, end):
            raise errors.raw(409, "booking_conflict_error")  # Booking.idempotencyKey unique violation

    # -- read -----------------------------------------------------------------------------------
    def get(self, uid: str, path: str) -> Booking | list[Booking]:
        """One booking, or the occurrences of a recurring booking by its recurringBookingUid."""
        booking = self.store.bookings.get(uid)
        if booking is not None:
            return booking
        if occurrences := self.store.recurring(uid):
            return occurrences
        raise not_found(f"Booking with uid={uid} was not found in the database", path)

    # -- cancel ---------------------------------------------------------------------------------
    def cancel(self, uid: str, body: JSON, caller: User | None, path: str) -> Booking | list[Booking]:
        """POST /v2/bookings/{uid}/cancel after its body passed the pipe."""
        subsequent = body.get("cancelSubsequentBookings") is True
        booking = self.store.bookings.get(uid)
        targets: list[Booking]
        series = True  # the answer is the occurrences: a recurring uid, or an occurrence and the ones after it
        if booking is None and (occurrences := self.store.recurring(uid)):
            if subsequent:
                raise bad_request(RECURRING_UID_SUBSEQUENT, path)
            now = self.now()  # input.service.ts: the oldest occurrence stands for all remaining ones
            booking, targets = occurrences[0], [b for b in occurrences if b.active and b.start_ms >= now]
        elif booking is None:
            raise not_found(f"Booking with uid={uid} not found", path)
        elif subsequent and booking.recurring_uid is not None:
            targets = [b for b in self.store.recurring(booking.recurring_uid) if b.start_ms >= booking.start_ms]
        else:
            targets, series = [booking], False
        if body.get("seatUid") is not None:
            raise bad_request("Invalid seatUid: this seat does not exist or has already been cancelled.", path)
        is_host = caller is not None and caller.hosts(booking.event_type)
        by = booking.event_type.host_email if is_host else (caller.email if caller else None)
        self._cancel(booking, targets, body.get("cancellationReason"), is_host, by, path)
        if subsequent and booking.recurring_uid is None:  # cancelled first, then this, as the real service does
            raise bad_request(f"Booking with bookingUid={uid} is not part of a recurring booking.", path)
        return targets if series else booking

    def _cancel(
        self, first: Booking, targets: list[Booking], reason: Any, is_host: bool, by: str | None, path: str
    ) -> None:
        """The input service's and core's cancel checks on `first`, then cancel every target still active."""
        if not first.active:
            raise bad_request(
                f"Can't cancel booking with uid={first.uid} because it has been cancelled already. Please provide "
                "uid of a booking that is not cancelled.",
                path,
            )
        if is_host and not (isinstance(reason, str) and reason.strip()):
            raise errors.raw(400, HOST_REASON_MESSAGE)
        now = self.now()
        if now > first.end_ms:  # handleCancelBooking.ts
            raise errors.raw(400, rules.CANCEL_ENDED)
        for b in targets:
            if b.active:
                self.store.deactivate(b, "cancelled", now)
                b.cancellation_reason = reason or None
                b.cancelled_by_email = by
        self._emit("BOOKING_CANCELLED", first)  # handleCancelBooking: one webhook, for the booking asked for

    # -- reschedule -----------------------------------------------------------------------------
    def reschedule(self, uid: str, body: JSON, caller: User | None, path: str) -> Booking:
        """POST /v2/bookings/{uid}/reschedule after its body passed the pipe."""
        old = self.store.bookings.get(uid)
        if old is None:
            raise not_found(f"Booking with uid={uid} was not found in the database", path)
        self._check_reschedulable(old, path)
        start = errors.parse_iso_ms(body["start"])
        assert start is not None
        et = self.store.event_types.get(old.event_type.id, old.event_type)
        end = start + et.length_in_minutes * 60_000
        return self._move(old, et, start, end, body.get("reschedulingReason"), body.get("rescheduledBy"), path)

    def _check_reschedulable(self, old: Booking, path: str) -> None:
        """bookings.service.ts: a cancelled booking cannot be moved; a rescheduled one names its successor."""
        if old.active:
            return
        if to := old.rescheduled_to_uid:
            raise bad_request(
                f"Can't reschedule booking with uid={old.uid} because it has been cancelled and rescheduled already "
                f"to booking with uid={to}. You probably want to reschedule {to} instead by passing it within the "
                "request URL.",
                path,
            )
        raise bad_request(
            f"Can't reschedule booking with uid={old.uid} because it has been cancelled. Please provide uid of a "
            "booking that is not cancelled.",
            path,
        )

    def _move(
        self, old: Booking, et: EventType, start: int, end: int, reason: str | None, by: str | None, path: str
    ) -> Booking:
        a = old.attendee
        if issues := rules.response_issues(et, a.name, a.email, a.phone_number):
            raise errors.zod(path, issues)
        now = self.now()
        self.check_slot(et, start, end, now, path, False, moving=old)
        new = dataclasses.replace(
            old,
            id=self.store.next_id(),
            uid=new_uid(),
            event_type=et,
            start_ms=start,
            end_ms=end,
            created_ms=now,
            updated_ms=None,
            attendee=dataclasses.replace(old.attendee),
            guests=list(old.guests),
            metadata=dict(old.metadata),
            responses=dict(old.responses),
            cancellation_reason=None,
            cancelled_by_email=None,
            rescheduling_reason=reason,
            rescheduled_by_email=by,
            rescheduled_from_uid=old.uid,
            rescheduled_to_uid=None,
            ics_uid=old.ics_uid or f"{old.uid}@Cal.com",
        )
        self.store.deactivate(old, "cancelled", now)
        old.rescheduled_to_uid, old.rescheduling_reason, old.rescheduled_by_email = new.uid, reason, by
        self.store.add(new)
        self._emit("BOOKING_RESCHEDULED", new, old)
        return new

    # -- outside changes (test hooks) -----------------------------------------------------------
    def outside_reschedule(
        self, uid: str, start: int, by: str, reason: str | None, minutes: int | None, path: str
    ) -> tuple[Booking, Booking]:
        """The attendee (the link in Cal.com's e-mails) or the host (Cal.com's UI) moves the booking: (old, new).
        The booking page keeps the booking's length unless told another one of the event type's lengths."""
        old = self.store.bookings.get(uid)
        if old is None:
            raise not_found(f"Booking with uid={uid} was not found in the database", path)
        self._check_reschedulable(old, path)
        et = self.store.event_types.get(old.event_type.id, old.event_type)
        length = minutes if minutes is not None else (old.end_ms - old.start_ms) // 60_000
        if length not in (et.length_in_minutes, *et.length_options):
            raise bad_request(rules.LENGTH_NOT_POSSIBLE + ", ".join(map(str, et.length_options)), path)
        email = old.event_type.host_email if by == "host" else old.attendee.email
        new = self._move(old, et, start, start + length * 60_000, reason, email, path)
        return old, new

    def outside_cancel(self, uid: str, by: str, reason: str | None, path: str) -> Booking:
        """The attendee or the host cancels in Cal.com's pages: the same rules as the API (a host gives a reason,
        an ended booking stays)."""
        booking = self.store.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} not found", path)
        email = booking.event_type.host_email if by == "host" else booking.attendee.email
        self._cancel(booking, [booking], reason, by == "host", email, path)
        return booking


def _location(loc: Any) -> str:
    if loc is None:
        return "integrations:daily"
    if isinstance(loc, str):
        return loc
    if loc.get("type") == "integration":
        return f"integrations:{loc.get('integration', 'cal-video')}"
    for key in ("address", "link", "phone", "location"):
        if isinstance(loc.get(key), str):
            return str(loc[key])
    return str(loc.get("type"))
