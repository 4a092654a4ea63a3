"""Sync one claimed appointment: run its plan against Cal.com, exactly once, and describe the outcome.

Exactly once: a create is the only call that can double-book. Before a create that may already have
happened (a later attempt of the event, or after an ambiguous answer: timeout, reset, 5xx, 409, or any
400 that could be a false negative), the worker lists Cal.com's bookings of that event type in that
time window (and attendee e-mail) and adopts the one whose metadata carries our appointment and phase id.
The outcome is the dict ``calsync.finish_sync_events`` records.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from worker.sync.calcom import DISCOVER_PAGE, CalcomClient, Exchange, booking_data, iso
from worker.sync.categories import AMBIGUOUS, Category, Verdict
from worker.sync.contacts import DEFAULT_PHONE_REGION
from worker.sync.contract import (
    APPOINTMENT_SLOT,
    BookingFact,
    ExchangeRecord,
    FailureDetail,
    KnownBooking,
    PhoneFinding,
    SyncResult,
    SyncState,
)
from worker.sync.event_types import EventTypeCache, LengthChoice, length_for
from worker.sync.planning import Action, Known, Plan, Target, attendee, parse_time, phone_verdict, plan

MAX_SUCCESSORS = 5  # hops along rescheduledToUid before giving up (Cal.com never chains that far for one booking)
META_APPOINTMENT = "calsync_appointment_id"
META_PHASE = "calsync_phase_id"
NO_LOOKUP_AFTER = frozenset(
    {
        Category.PAST_APPOINTMENT,
        Category.EVENT_TYPE_NOT_FOUND,
        Category.MISSING_CONTACT,
        Category.RATE_LIMITED,
        Category.AUTH,
    }
)


def exchange_record(ex: Exchange) -> ExchangeRecord:
    """An exchange as archived (calsync.sync_exchange)."""
    return ExchangeRecord(
        phase_id=ex.phase_id,
        action=ex.action,
        request_method=ex.method,
        request_path=ex.path,
        request_body=ex.request_body,
        response_status=ex.status,
        response_headers=ex.headers or None,
        response_body=ex.text,
        response_size=getattr(ex, "response_size", None),
        response_truncated=bool(getattr(ex, "truncated", False)),
        duration_ms=round(ex.duration_ms, 3),
        category=str(ex.verdict.category),
        error=ex.verdict.message or None,
        at=ex.at,
    )


@dataclass
class Outcome:
    """What one attempt found, while it runs; ``result()`` is what the database records."""

    appointment_id: int
    event_id: str
    exchanges: list[Exchange] = field(default_factory=list)
    bookings: list[BookingFact] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    phone_findings: list[PhoneFinding] = field(default_factory=list)
    failure: Verdict | None = None
    failed_exchange: Exchange | None = None
    skipped: bool = False

    @property
    def category(self) -> Category:
        return self.failure.category if self.failure is not None else Category.OK

    def result(self) -> SyncResult:
        ex = self.failed_exchange
        detail = error = None
        if self.failure is not None:
            detail = FailureDetail(
                message=self.failure.message,
                field=self.failure.field,
                http_status=ex.status if ex else None,
                action=ex.action if ex else None,
                phase_id=ex.phase_id if ex else None,
                request_id=ex.headers.get("x-request-id") if ex else None,
            )
            error = (
                f"HTTP {ex.status}: {ex.text or ex.verdict.message}"
                if ex and ex.status is not None
                else self.failure.message
            )
        reset = ex.headers.get("x-ratelimit-reset-default") if ex else None
        return SyncResult(
            event_id=uuid.UUID(self.event_id),
            appointment_id=self.appointment_id,
            category=str(self.category),
            skipped=self.skipped,
            error=error,
            detail=detail,
            retry_after_s=_seconds(reset),
            bookings=self.bookings,
            superseded=self.superseded,
            exchanges=[exchange_record(e) for e in self.exchanges if e.sent],
            phone_findings=self.phone_findings,
        )


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def metadata(appointment_id: int, phase_id: int | None) -> dict[str, str]:
    meta = {META_APPOINTMENT: str(appointment_id)}
    if phase_id is not None:
        meta[META_PHASE] = str(phase_id)
    return meta


def create_body(
    state: SyncState, target: Target, person: dict[str, Any], choice: LengthChoice | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": iso(target.start),
        "eventTypeId": target.event_type_id,
        "attendee": person,
        "bookingFieldsResponses": {"title": target.title},
        "metadata": metadata(state.id, target.phase_id),
    }
    if choice is not None and choice.length_in_minutes is not None:
        body["lengthInMinutes"] = choice.length_in_minutes  # only where the event type offers several lengths
    return body


def minutes(target: Target) -> int:
    return round((target.end - target.start).total_seconds() / 60)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: object) -> dt.datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def booking_fact(target: Target, data: dict[str, Any]) -> BookingFact:
    return BookingFact(
        phase_id=target.phase_id,
        uid=str(data["uid"]) if isinstance(data.get("uid"), str) else None,
        booking_id=_int(data.get("id")),
        start_at=_time(data.get("start")) or target.start,
        end_at=_time(data.get("end")) or target.end,
        event_type_id=target.event_type_id,
    )


class AppointmentSync:
    def __init__(
        self,
        client: CalcomClient,
        state: SyncState,
        event_id: str,
        attempt: int,
        event_types: EventTypeCache | None = None,
        default_region: str = DEFAULT_PHONE_REGION,
    ) -> None:
        self.client = client
        self.state = state
        self.attempt = attempt
        self.event_types = event_types or EventTypeCache(client)
        self.lengths: dict[int, LengthChoice] = {}  # per target slot: what to send for its length
        self.default_region = default_region
        self.out = Outcome(state.id, event_id)

    async def run(self, now: dt.datetime) -> Outcome:
        if self.attempt > 1 and not await self._discover():
            return self.out
        p: Plan = plan(self.state, now, self.default_region)
        self._check_phone()
        if p.skip:
            self.out.skipped = True
            return self.out
        if p.guard is not None:
            self.out.failure = p.guard
            return self.out
        if not await self._choose_lengths(p):
            return self.out
        for action in p.actions:
            if not await self._do(action, p):
                return self.out
        return self.out

    def _check_phone(self) -> None:
        """A stored phone Cal.com would refuse is never sent and becomes a data-quality finding (a fact the database
        records); one that is fine (again) resolves it."""
        c = self.state.customer
        if c is None or not c.phone:
            return
        verdict = phone_verdict(self.state, self.default_region)
        reason = verdict.reason if verdict.reportable else None
        self.out.phone_findings.append(PhoneFinding(customer_id=c.id, value=c.phone, reason=reason))

    async def _choose_lengths(self, p: Plan) -> bool:
        """Every booking the plan makes must cover exactly its interval: learn each event type's length(s) and
        what to send. Where no length fits, nothing is booked (configuration drift, a person decides)."""
        for action in p.actions:
            t = action.target
            if t is None or t.event_type_id is None or t.slot in self.lengths:
                continue
            lengths, ex = await self.event_types.lengths(t.event_type_id)
            if lengths is None:  # a failed read is this attempt's failure, archived with it (a good one is the
                assert ex is not None  # worker's cache of its configuration, not part of the appointment's record)
                if ex.sent:
                    self.out.exchanges.append(ex)
                return self._fail(ex)
            choice = length_for(lengths, minutes(t))
            if choice.refused is not None:
                self.out.failure = choice.refused
                return False
            self.lengths[t.slot] = choice
        return True

    def _fail(self, ex: Exchange, verdict: Verdict | None = None) -> bool:
        self.out.failure = verdict or ex.verdict
        self.out.failed_exchange = ex
        return False

    async def _send(self, call: Any) -> Exchange:
        ex: Exchange = await call
        self.out.exchanges.append(ex)
        return ex

    async def _do(self, action: Action, p: Plan) -> bool:
        if action.kind == "cancel":
            return await self._cancel(action)
        assert action.target is not None and p.attendee is not None
        if action.kind == "reschedule":
            assert action.known is not None
            return await self._reschedule(action.target, action.known, p.attendee)
        return await self._create(action.target, p.attendee, maybe_exists=False)

    async def _cancel(self, action: Action) -> bool:
        k = action.known
        assert k is not None
        reason = f"Cancelled in the salon system (appointment #{self.out.appointment_id})"
        uid: str | None = k.uid
        for _ in range(MAX_SUCCESSORS):
            assert uid is not None
            ex = await self._send(self.client.cancel(uid, reason, k.phase_id))
            if ex.verdict.category == Category.OK or ex.status == 404 or _ended(ex):
                break  # cancelled; unknown there; or over, so nothing is left to cancel
            if not (ex.status == 400 and "cancelled already" in ex.verdict.message):
                return self._fail(ex)
            # cancelled already: by us, or moved at Cal.com (an outside reschedule): cancel the live successor
            read, successor = await self._successor(uid, k.phase_id)
            if not read:
                return False
            if successor is None:
                break
            uid = successor
        else:
            return self._fail(ex, _too_many_successors(k.uid))
        if action.superseded_id is not None:
            self.out.superseded.append(action.superseded_id)
        elif k.slot is not None:
            self.out.bookings.append(BookingFact(phase_id=k.phase_id, uid=k.uid, cancelled=True))
        return True

    async def _successor(self, uid: str, phase_id: int | None) -> tuple[bool, str | None]:
        """(read, successor): the booking an outside reschedule moved ``uid`` to (``rescheduledToUid``), or None
        when there is none; read is False (the failure recorded) when Cal.com could not be read."""
        ex = await self._send(self.client.read(uid, phase_id))
        if ex.status == 404:
            return True, None
        if ex.verdict.category != Category.OK:
            return self._fail(ex), None
        data = ex.body.get("data") if isinstance(ex.body, dict) else None
        successor = data.get("rescheduledToUid") if isinstance(data, dict) else None
        return True, successor if isinstance(successor, str) and successor and successor != uid else None

    async def _reschedule(self, target: Target, k: Known, person: dict[str, Any]) -> bool:
        choice = self.lengths.get(target.slot)
        if choice is not None and not choice.default_fits:
            # Cal.com reschedules to the event type's default length: cancel and book the right length instead
            if not await self._cancel(Action("cancel", known=k)):
                return False
            return await self._create(target, person, maybe_exists=False)
        reason = f"Moved in the salon system (appointment #{self.out.appointment_id})"
        uid = k.uid
        for _ in range(MAX_SUCCESSORS):
            ex = await self._send(self.client.reschedule(uid, target.start, reason, target.phase_id))
            if ex.verdict.category == Category.OK and (data := booking_data(ex)):
                return self._adopt(target, data)
            if ex.status == 404:
                return await self._create(target, person, maybe_exists=True)  # the booking is gone at Cal.com
            if not (ex.status == 400 and "cancelled" in ex.verdict.message):
                return self._fail(ex)
            read, successor = await self._successor(uid, target.phase_id)  # moved at Cal.com: move its successor
            if not read:
                return False
            if successor is None:
                return await self._create(target, person, maybe_exists=True)  # cancelled for good
            # where the successor is, the next attempt learns (or, if this one fails, moves it all the same:
            # planning.Known.recorded); its event type is the booking's it was moved from
            self.out.bookings.append(
                BookingFact(phase_id=target.phase_id, uid=successor, event_type_id=k.event_type_id)
            )
            uid = successor
        return self._fail(ex, _too_many_successors(k.uid))

    async def _create(self, target: Target, person: dict[str, Any], *, maybe_exists: bool) -> bool:
        if maybe_exists:
            found = await self._lookup(target, person)
            if found is not None:
                return found
        body = create_body(self.state, target, person, self.lengths.get(target.slot))
        ex = await self._send(self.client.create(body, target.phase_id))
        if ex.verdict.category == Category.OK and (data := booking_data(ex)):
            return self._adopt(target, data)
        if ex.status is not None and 200 <= ex.status < 300 and (series := _occurrences(ex.body)):
            return await self._refuse_series(target, ex, series)
        ambiguous = ex.verdict.category in AMBIGUOUS or (
            ex.status == 400 and ex.verdict.category not in NO_LOOKUP_AFTER
        )
        if ambiguous:
            found = await self._lookup(target, person)
            if found is not None:
                return found
        return self._fail(ex)

    async def _lookup(self, target: Target, person: dict[str, Any]) -> bool | None:
        """Find our booking at Cal.com (after a possibly successful create) and adopt it: True when adopted,
        None when it is certainly not there (so creating is safe), False (with the failure recorded) when the
        lookup itself failed: then nothing may be created on this try."""
        if target.event_type_id is None:
            return None
        ex = await self._send(
            self.client.find(target.event_type_id, target.start, target.end, person.get("email"), target.phase_id)
        )
        if ex.verdict.category != Category.OK or not isinstance(ex.body, dict):
            # unknown whether the booking exists: retry later (the next try looks again before creating)
            return self._fail(ex)
        for b in _bookings(ex.body):
            meta = b.get("metadata") or {}
            if (
                isinstance(meta, dict)
                and str(meta.get(META_APPOINTMENT)) == str(self.out.appointment_id)
                and meta.get(META_PHASE) == (str(target.phase_id) if target.phase_id is not None else None)
                and str(b.get("status", "")).lower() not in ("cancelled", "rejected")
                and isinstance(b.get("uid"), str)
            ):
                return self._adopt(target, b)
        return None

    async def _discover(self) -> bool:
        """A later attempt does not know what an earlier one achieved (a worker may have died after Cal.com
        answered): list the appointment's bookings at Cal.com by our metadata and take them as known, so the
        plan neither books twice nor leaves a booking behind. False (failure recorded) if the listing fails."""
        state = self.state
        event_types = {b.event_type_id for b in state.synced}
        event_types.add(state.service.event_type_id if state.service else None)
        event_types.update(m.event_type_id for m in state.event_map)
        ids = [e for e in event_types if e is not None]
        if not ids:
            return True
        person = attendee(state) or {}
        email = person.get("email")
        # every time the appointment had that an earlier attempt may have booked: now, what we recorded, and
        # the times in its undelivered events
        times = [parse_time(state.starts_at)] if state.starts_at else []
        times += [parse_time(b.start_at) for b in state.synced if b.start_at]
        times += [parse_time(t) for t in state.event_times]
        if not times:
            return True
        window = (min(times) - dt.timedelta(days=1), max(times) + dt.timedelta(days=2))
        found: dict[int, KnownBooking] = {}
        skip = 0
        while True:
            ex = await self._send(self.client.find_for(ids, email, window, skip))
            if ex.verdict.category != Category.OK or not isinstance(ex.body, dict):
                return self._fail(ex)
            for b in _bookings(ex.body):
                meta = b.get("metadata") or {}
                if not isinstance(meta, dict) or str(meta.get(META_APPOINTMENT)) != str(self.out.appointment_id):
                    continue
                if str(b.get("status", "")).lower() in ("cancelled", "rejected") or not isinstance(b.get("uid"), str):
                    continue
                phase = meta.get(META_PHASE)
                slot = int(phase) if isinstance(phase, str) and phase.isdigit() else APPOINTMENT_SLOT
                found[slot] = KnownBooking(
                    slot=slot,
                    uid=str(b["uid"]),
                    booking_id=_int(b.get("id")),
                    start_at=_time(b.get("start")),
                    end_at=_time(b.get("end")),
                    event_type_id=_int(b.get("eventTypeId")),
                )
            page = ex.body.get("pagination") or {}
            if not (isinstance(page, dict) and page.get("hasNextPage")):
                break
            skip += DISCOVER_PAGE
        known = {b.slot: b for b in state.synced}
        known.update(found)
        self.state = msgspec.structs.replace(state, synced=list(known.values()))
        # what Cal.com has is recorded even if the rest of this attempt fails
        self.out.bookings += [
            BookingFact(
                phase_id=None if b.slot == APPOINTMENT_SLOT else b.slot,
                uid=b.uid,
                booking_id=b.booking_id,
                start_at=b.start_at,
                end_at=b.end_at,
                event_type_id=b.event_type_id,
            )
            for b in found.values()
        ]
        return True

    def _adopt(self, target: Target, data: dict[str, Any]) -> bool:
        """Record the booking Cal.com has for the target; it must cover exactly the target's interval (else the
        booking is still recorded, so the next attempt books it again, and the drift is the failure)."""
        fact = booking_fact(target, data)
        self.out.bookings.append(fact)
        if (fact.start_at, fact.end_at) != (target.start, target.end):
            self.out.failure = Verdict(
                Category.EVENT_TYPE_LENGTH,
                f"Cal.com booked {iso(fact.start_at or target.start)} to {iso(fact.end_at or target.end)} for the "
                f"salon's {iso(target.start)} to {iso(target.end)} (event type {target.event_type_id}): give the event "
                f"type a length of {minutes(target)} minutes, then requeue",
            )
            return False
        return True

    async def _refuse_series(self, target: Target, ex: Exchange, series: list[str]) -> bool:
        """A recurring event type booked a series for one appointment: cancel every occurrence (no orphans) and
        refuse the event type."""
        reason = f"calsync: event type {target.event_type_id} is recurring; a salon appointment is one booking"
        for uid in series:
            cancelled = await self._send(self.client.cancel(uid, reason, target.phase_id))
            if cancelled.verdict.category != Category.OK and cancelled.status != 404:
                # an occurrence is still there: keep it known, so the next attempt cancels it (it is ours)
                self.out.bookings.append(
                    BookingFact(phase_id=target.phase_id, uid=uid, event_type_id=target.event_type_id)
                )
                return self._fail(cancelled)
        return self._fail(
            ex,
            Verdict(
                Category.RECURRING_EVENT_TYPE,
                f"event type {target.event_type_id} is recurring: Cal.com booked {len(series)} occurrences, which "
                "were cancelled; map the service to an event type without recurrence, then requeue",
            ),
        )


def _too_many_successors(uid: str) -> Verdict:
    return Verdict(Category.VALIDATION, f"booking {uid}: more than {MAX_SUCCESSORS} successors (rescheduledToUid)")


def _ended(ex: Exchange) -> bool:
    return ex.status == 400 and "already ended" in ex.verdict.message


def _occurrences(body: object) -> list[str]:
    """The uids of a recurring create's answer (``data`` a list of bookings), else []."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [b["uid"] for b in data if isinstance(b, dict) and isinstance(b.get("uid"), str)]


def _bookings(body: dict[str, Any]) -> list[dict[str, Any]]:
    data = body.get("data")
    return [b for b in data if isinstance(b, dict)] if isinstance(data, list) else []
