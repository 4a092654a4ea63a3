"""Sync one claimed appointment: run its plan against Cal.com, exactly once, and describe the outcome.

Exactly once: a create is the only call that can double-book. Before a create that may already have
happened (a later attempt of the event, or after an ambiguous answer: timeout, reset, 5xx, 409, or any
400 that could be a false negative), the worker lists Cal.com's bookings of that event type in that
time window (and attendee e-mail) and adopts the one whose metadata carries our appointment and phase id.
The outcome is the dict ``calsync.finish_sync_events`` records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from worker.sync.calcom import CalcomClient, Exchange, booking_data, iso
from worker.sync.categories import AMBIGUOUS, Category, Verdict
from worker.sync.planning import Action, Known, Plan, Target, attendee, parse_time, plan

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


@dataclass
class Outcome:
    appointment_id: int
    outbox_id: str
    exchanges: list[Exchange] = field(default_factory=list)
    bookings: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    appointment: dict[str, Any] = field(default_factory=dict)
    failure: Verdict | None = None
    failed_exchange: Exchange | None = None
    skipped: bool = False

    def record(self, attempt: int) -> dict[str, Any]:
        if self.skipped:
            outcome = "skipped"
        elif self.failure is None:
            outcome = "synced"
        elif self.failure.category == Category.RATE_LIMITED:
            outcome = "rate_limited"
        else:
            outcome = "retry" if self.failure.retryable else "dead"
        detail = None
        if self.failure is not None:
            ex = self.failed_exchange
            detail = {
                "category": str(self.failure.category),
                "message": self.failure.message,
                "field": self.failure.field,
                "retryable": self.failure.retryable,
                "http_status": ex.status if ex else None,
                "action": ex.action if ex else None,
                "phase_id": ex.phase_id if ex else None,
                "request_id": ex.headers.get("x-request-id") if ex else None,
                "attempt": attempt,
            }
        error = None
        if self.failure is not None:
            ex = self.failed_exchange
            error = f"HTTP {ex.status}: {ex.text}" if ex and ex.status is not None else self.failure.message
        reset = self.failed_exchange.headers.get("x-ratelimit-reset-default") if self.failed_exchange else None
        return {
            "outbox_id": self.outbox_id,
            "appointment_id": self.appointment_id,
            "outcome": outcome,
            "category": str(self.failure.category) if self.failure else "OK",
            "error": error,
            "detail": detail,
            "retry_after_s": float(reset) if reset else None,
            "appointment": self.appointment,
            "phases": self.phases,
            "bookings": self.bookings,
            "superseded": self.superseded,
            "attempts": [e.archive(attempt) for e in self.exchanges if e.sent],
        }


def metadata(appointment_id: int, phase_id: int | None) -> dict[str, str]:
    meta = {META_APPOINTMENT: str(appointment_id)}
    if phase_id is not None:
        meta[META_PHASE] = str(phase_id)
    return meta


def create_body(state: dict[str, Any], target: Target, person: dict[str, Any]) -> dict[str, Any]:
    return {
        "start": iso(target.start),
        "eventTypeId": target.event_type_id,
        "attendee": person,
        "bookingFieldsResponses": {"title": target.title},
        "metadata": metadata(int(state["id"]), target.phase_id),
    }


def booking_record(target: Target, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "phase_id": target.phase_id,
        "uid": data.get("uid"),
        "booking_id": data.get("id"),
        "start_at": data.get("start") or iso(target.start),
        "end_at": data.get("end") or iso(target.end),
        "event_type_id": target.event_type_id,
    }


class AppointmentSync:
    def __init__(self, client: CalcomClient, state: dict[str, Any], outbox_id: str, attempt: int) -> None:
        self.client = client
        self.state = state
        self.attempt = attempt
        self.out = Outcome(int(state["id"]), outbox_id)

    async def run(self, now: dt.datetime) -> Outcome:
        if self.attempt > 1 and not await self._discover():
            return self.out
        p: Plan = plan(self.state, now)
        if p.skip:
            self.out.skipped = True
            return self.out
        if p.guard is not None:
            self.out.failure = p.guard
            self._mark_phases("failed", p.guard.message)
            return self.out
        for action in p.actions:
            if not await self._do(action, p):
                self._mark_phases("failed", self.out.failure.message if self.out.failure else "")
                return self.out
        self._mark_phases("synced", None)
        return self.out

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
        ex = await self._send(self.client.cancel(k.uid, reason, k.phase_id))
        gone = ex.status == 404 or (ex.status == 400 and "cancelled already" in ex.verdict.message)
        if ex.verdict.category != Category.OK and not gone:
            return self._fail(ex)
        if action.superseded_id is not None:
            self.out.superseded.append(action.superseded_id)
        elif k.slot >= 0:
            self.out.bookings.append({"phase_id": k.phase_id, "uid": k.uid, "cancelled": True})
        return True

    async def _reschedule(self, target: Target, k: Known, person: dict[str, Any]) -> bool:
        reason = f"Moved in the salon system (appointment #{self.out.appointment_id})"
        ex = await self._send(self.client.reschedule(k.uid, target.start, reason, target.phase_id))
        if ex.verdict.category == Category.OK and (data := booking_data(ex)):
            self._adopt(target, data)
            return True
        if ex.status == 404 or (ex.status == 400 and "cancelled" in ex.verdict.message):
            return await self._create(target, person, maybe_exists=True)  # the booking is gone at Cal.com
        return self._fail(ex)

    async def _create(self, target: Target, person: dict[str, Any], *, maybe_exists: bool) -> bool:
        if maybe_exists:
            found = await self._lookup(target, person)
            if found is not None:
                return found
        ex = await self._send(self.client.create(create_body(self.state, target, person), target.phase_id))
        if ex.verdict.category == Category.OK and (data := booking_data(ex)):
            self._adopt(target, data)
            return True
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
        for b in ex.body.get("data") or []:
            meta = b.get("metadata") or {}
            if (
                str(meta.get(META_APPOINTMENT)) == str(self.out.appointment_id)
                and meta.get(META_PHASE) == (str(target.phase_id) if target.phase_id is not None else None)
                and str(b.get("status", "")).lower() not in ("cancelled", "rejected")
            ):
                self._adopt(target, b)
                return True
        return None

    async def _discover(self) -> bool:
        """A later attempt does not know what an earlier one achieved (a worker may have died after Cal.com
        answered): list the appointment's bookings at Cal.com by our metadata and take them as known, so the
        plan neither books twice nor leaves a booking behind. False (failure recorded) if the listing fails."""
        event_types = {b.get("event_type_id") for b in self.state.get("synced") or []}
        service = self.state.get("service") or {}
        event_types.add(service.get("event_type_id"))
        event_types.update((self.state.get("event_map") or {}).values())
        ids = [int(e) for e in event_types if e is not None]
        if not ids:
            return True
        person = attendee(self.state) or {}
        email = person.get("email")
        # every time the appointment had that an earlier attempt may have booked: now, what we recorded, and
        # the times in its undelivered events
        times = [parse_time(self.state["starts_at"])] if self.state.get("starts_at") else []
        times += [parse_time(b["start_at"]) for b in self.state.get("synced") or [] if b.get("start_at")]
        times += [parse_time(t) for t in self.state.get("event_times") or [] if t]
        if not times:
            return True
        window = (min(times) - dt.timedelta(days=1), max(times) + dt.timedelta(days=2))
        found: dict[int, dict[str, Any]] = {}
        skip = 0
        while True:
            ex = await self._send(self.client.find_for(ids, email, window, skip))
            if ex.verdict.category != Category.OK or not isinstance(ex.body, dict):
                return self._fail(ex)
            for b in ex.body.get("data") or []:
                meta = b.get("metadata") or {}
                if str(meta.get(META_APPOINTMENT)) != str(self.out.appointment_id):
                    continue
                if str(b.get("status", "")).lower() in ("cancelled", "rejected"):
                    continue
                slot = int(meta[META_PHASE]) if meta.get(META_PHASE) else 0
                found[slot] = {
                    "slot": slot,
                    "uid": b.get("uid"),
                    "booking_id": b.get("id"),
                    "start_at": b.get("start"),
                    "end_at": b.get("end"),
                    "event_type_id": b.get("eventTypeId"),
                }
            page = ex.body.get("pagination") or {}
            if not page.get("hasNextPage"):
                break
            skip += 250
        known = {int(b["slot"]): b for b in self.state.get("synced") or []}
        known.update(found)
        self.state["synced"] = list(known.values())
        # what Cal.com has is recorded even if the rest of this attempt fails
        self.out.bookings += [
            {"phase_id": b["slot"] or None, **{k: v for k, v in b.items() if k != "slot"}} for b in found.values()
        ]
        return True

    def _adopt(self, target: Target, data: dict[str, Any]) -> None:
        record = booking_record(target, data)
        self.out.bookings.append(record)
        if target.phase_id is None:
            self.out.appointment.update(
                calcom_v2_booking_uid=record["uid"],
                calcom_v2_booking_id=str(record["booking_id"]) if record["booking_id"] is not None else None,
                calcom_booking_id=record["booking_id"],
            )
        else:
            self.out.phases.append(
                {
                    "id": target.phase_id,
                    "calcom_booking_uid": record["uid"],
                    "calcom_booking_id": record["booking_id"],
                    "calcom_sync_status": "synced",
                    "sync_error_message": None,
                }
            )
            first = min((p["id"] for p in self.state.get("phases") or [] if p.get("staff_required")), default=None)
            if target.phase_id == first:  # as the app did: the appointment carries its first phase's booking
                self.out.appointment.update(
                    calcom_v2_booking_uid=record["uid"],
                    calcom_v2_booking_id=str(record["booking_id"]) if record["booking_id"] is not None else None,
                )

    def _mark_phases(self, status: str, message: str | None) -> None:
        """Staff-required phases not synced in this run report the appointment's state (partial states)."""
        if not self.state.get("is_composite"):
            return
        done = {p["id"] for p in self.out.phases}
        for p in self.state.get("phases") or []:
            if p.get("staff_required") and p["id"] not in done and p.get("calcom_sync_status") != status:
                if status == "synced" and not p.get("calcom_booking_uid"):
                    continue
                self.out.phases.append({"id": p["id"], "calcom_sync_status": status, "sync_error_message": message})


def parse_state(raw: dict[str, Any]) -> dict[str, Any]:
    """The sync_state row as plain Python (times stay ISO strings; reconcile parses what it uses)."""
    raw.setdefault("phases", [])
    for p in raw["phases"]:
        p["start_time"] = str(p["start_time"])
        p["end_time"] = str(p["end_time"])
    if raw.get("starts_at"):
        parse_time(raw["starts_at"])
    return raw
