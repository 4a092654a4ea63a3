"""What to send: compare what an appointment needs at Cal.com with what Cal.com has, as calls to make.

The worker syncs an appointment's current state, not each event on its own, so the events it coalesces
(create then cancel, several reschedules) cost at most the calls that state needs. Pure functions of the
typed state (``contract.SyncState``); the pre-flight guards here make no API call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from worker.sync.categories import Category, Verdict
from worker.sync.contacts import DEFAULT_LANGUAGE, DEFAULT_PHONE_REGION, PhoneVerdict, normalise_phone
from worker.sync.contract import APPOINTMENT_SLOT, SyncState


@dataclass(frozen=True)
class Target:
    """A booking the appointment needs."""

    slot: int
    phase_id: int | None
    event_type_id: int | None
    start: dt.datetime
    end: dt.datetime
    title: str


@dataclass(frozen=True)
class Known:
    """A booking Cal.com has for the appointment (as far as we know). ``slot`` is None for the booking of a
    superseded phase, which is no slot of the appointment any more. ``recorded``: the worker's own record
    (calsync.synced_bookings), not a uid the app stored; a recorded booking without a time is one the worker
    followed to (an outside reschedule's successor) but could not move."""

    slot: int | None
    phase_id: int | None
    uid: str
    booking_id: int | None
    start: dt.datetime | None
    event_type_id: int | None
    end: dt.datetime | None = None
    recorded: bool = False


@dataclass(frozen=True)
class Action:
    kind: str  # cancel | reschedule | create
    target: Target | None = None
    known: Known | None = None
    superseded_id: int | None = None


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    guard: Verdict | None = None
    attendee: dict[str, Any] | None = None
    skip: bool = False  # nothing to do and nothing to record (an appointment kept as history)


def parse_time(value: Any) -> dt.datetime:
    t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def attendee(state: SyncState, default_region: str = DEFAULT_PHONE_REGION) -> dict[str, Any] | None:
    """Name, e-mail, phone and language for Cal.com, each only as Cal.com accepts it: the phone in E.164 (national
    formats read with the salon's country), never one that is not valid; the e-mail only if Cal.com's rule takes it,
    else the customer's placeholder, so that a phone-only customer books on an event type whose e-mail is required
    (the default). None when there is nothing to send."""
    c = state.customer
    if c is None:
        return None
    result: dict[str, Any] = {
        "name": c.name or "Kunde",
        "timeZone": state.booking_timezone or "UTC",
        "language": state.language or DEFAULT_LANGUAGE,
    }
    real_email = c.email if c.email and c.email_accepted and not c.email_is_placeholder else None
    phone = phone_verdict(state, default_region).e164
    email = real_email or (c.email if c.email and c.email_is_placeholder and c.email_accepted else None)
    email = email or c.placeholder_email  # a refused or missing e-mail: the placeholder in its place, never sent
    if phone:
        result["phoneNumber"] = phone
    if not email:
        return result if phone else None
    result["email"] = email
    return result


def phone_verdict(state: SyncState, default_region: str = DEFAULT_PHONE_REGION) -> PhoneVerdict:
    c = state.customer
    return normalise_phone(c.phone if c else None, state.phone_region or default_region)


def targets(state: SyncState) -> tuple[list[Target], Verdict | None]:
    """The bookings a bookable appointment needs: one per staff-required phase of a composite, else one."""
    service = state.service
    service_name = service.name if service else None
    if state.is_composite:
        phases = [p for p in state.phases if p.staff_required]
        if state.composite_flagged or not phases:
            return [], Verdict(
                Category.COMPOSITE_FAILURE,
                f"composite appointment {state.id} has no staff-required phases"
                + (f": {state.composite_problem}" if state.composite_problem else ""),
            )
        out = [
            Target(
                p.id,
                p.id,
                state.event_type_of_segment(p.segment_key or ""),
                parse_time(p.start_time),
                parse_time(p.end_time),
                f"{service_name} - {p.segment_name or p.segment_key}",
            )
            for p in phases
        ]
        missing = [p.segment_key for p, t in zip(phases, out, strict=True) if t.event_type_id is None]
        if missing:
            return out, Verdict(
                Category.CONFIG_MISSING,
                f"no Cal.com event type in calcom_event_map for service {service.id if service else None} "
                f"segment(s) {', '.join(map(str, missing))} and staff {state.staff_id}",
            )
        return out, None
    assert state.starts_at is not None and state.ends_at is not None
    target = Target(
        APPOINTMENT_SLOT,
        None,
        service.event_type_id if service else None,
        parse_time(state.starts_at),
        parse_time(state.ends_at),
        str(service_name or "Termin"),
    )
    if target.event_type_id is None:
        return [target], Verdict(
            Category.CONFIG_MISSING, f"service {service.id if service else None} has no calcom_event_type_id"
        )
    return [target], None


def known(state: SyncState) -> dict[int, Known]:
    """What Cal.com has: the worker's record, else the booking uids the app stored itself."""
    out: dict[int, Known] = {}
    for b in state.synced:
        out[b.slot] = Known(
            b.slot,
            None if b.slot == APPOINTMENT_SLOT else b.slot,
            b.uid,
            b.booking_id,
            parse_time(b.start_at) if b.start_at else None,
            b.event_type_id,
            parse_time(b.end_at) if b.end_at else None,
            recorded=True,
        )
    if not out:
        if state.is_composite:
            for p in state.phases:
                if p.calcom_booking_uid:
                    out[p.id] = Known(p.id, p.id, p.calcom_booking_uid, p.calcom_booking_id, None, None)
        elif state.calcom_v2_booking_uid:
            out[APPOINTMENT_SLOT] = Known(APPOINTMENT_SLOT, None, state.calcom_v2_booking_uid, None, None, None)
    return out


def plan(state: SyncState, now: dt.datetime, default_region: str = DEFAULT_PHONE_REGION) -> Plan:
    status = state.status
    have = known(state)
    result = Plan()
    for s in state.superseded:
        result.actions.append(
            Action("cancel", known=Known(None, s.phase_id, s.uid, None, None, None), superseded_id=s.id)
        )
    if status == "cancelled":
        result.actions += [Action("cancel", known=k) for k in have.values()]
        return result
    if status not in ("pending", "confirmed", "scheduled", "booked"):
        return result  # in progress, completed, no-show: what happened at Cal.com stays as it is
    if state.calcom_sync_status == "orphaned_local" and not have:
        result.skip = True  # kept as history by the runbook: it exists only here, on purpose
        return result
    if state.host_conflict:
        result.guard = Verdict(
            Category.HOST_UNAVAILABLE,
            f"host conflict: the host is also booked by appointment #{state.host_conflict}; "
            "reschedule one of them (or cancel it), then it syncs",
        )
        return result
    wanted, guard = targets(state)
    if guard:
        result.guard = guard
        return result
    changes: list[Action] = []
    for t in wanted:
        k = have.pop(t.slot, None)
        if k is None:
            changes.append(Action("create", target=t))
        elif k.event_type_id is not None and k.event_type_id != t.event_type_id:
            changes += [Action("cancel", known=k), Action("create", target=t)]
        elif k.end is not None and k.start is not None and k.end - k.start != t.end - t.start:
            # another length: a reschedule keeps the event type's default length, so book it again
            changes += [Action("cancel", known=k), Action("create", target=t)]
        elif (k.start is None and k.recorded) or (k.start is not None and k.start != t.start):
            # where it is, if the worker knows; a successor whose time it never learnt is moved all the same (a
            # uid the app stored is taken as booked where the appointment is, as the app's old job booked it)
            changes.append(Action("reschedule", target=t, known=k))
    result.actions += [Action("cancel", known=k) for k in have.values()]  # bookings no phase needs any more
    if changes:
        if any(a.target and a.target.start < now for a in changes):
            first = min(a.target.start for a in changes if a.target)
            result.guard = Verdict(
                Category.PAST_APPOINTMENT,
                f"appointment {state.id} starts at {first.isoformat()}, which is in the past: "
                "Cal.com refuses bookings in the past (cancel it or keep it as history)",
            )
            return result
        result.attendee = attendee(state, default_region)
        if result.attendee is None:
            result.guard = Verdict(
                Category.MISSING_CONTACT,
                f"customer {state.customer.id if state.customer else None} has no usable e-mail or phone "
                "(and no placeholder): give the customer a contact, then requeue",
            )
            return result
    result.actions += sorted(changes, key=lambda a: {"cancel": 0, "reschedule": 1, "create": 2}[a.kind])
    return result
