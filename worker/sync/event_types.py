"""What the worker knows of Cal.com's event types: their length(s), read once and kept for a while.

Cal.com books ``start + (lengthInMinutes ?? eventType.length)`` and refuses ``lengthInMinutes`` on an event type
with one fixed length, and any length not among the options of one with several (calcom-api.md §8). So a booking
covers exactly the salon's interval only if the worker knows the event type: ``length_for`` says what to send, or
why nothing can be booked (configuration drift: a person gives the event type that length).

Read with ``GET /v2/event-types/{id}`` and ``cal-api-version: 2024-06-14`` (the version those endpoints want; with
the bookings version the route does not exist). Kept ``ttl_s`` seconds; refreshed sooner after Cal.com refused a
length (someone changed the event type).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from worker.sync.calcom import CalcomClient, Exchange
from worker.sync.categories import Category, Verdict

EVENT_TYPES_API_VERSION = "2024-06-14"


@dataclass(frozen=True)
class EventTypeLengths:
    id: int
    length: int  # minutes, the default
    options: tuple[int, ...]  # the lengths a booking may choose (empty: only `length`, and no lengthInMinutes)


@dataclass(frozen=True)
class LengthChoice:
    """What to send for a booking of ``minutes``: ``length_in_minutes`` (None: the default fits, send nothing),
    or ``refused`` (no length of the event type fits)."""

    length_in_minutes: int | None = None
    refused: Verdict | None = None
    default_fits: bool = True  # a reschedule books the default length: it keeps a booking's length only if True


def parse_lengths(event_type_id: int, body: object) -> EventTypeLengths | None:
    """The lengths from an event type answer (the 2024-06-14 shape: data.lengthInMinutes and
    data.lengthInMinutesOptions; the older data.eventType.length shape is accepted too). None if it has none."""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict) and isinstance(data.get("eventType"), dict):
        data = data["eventType"]
    if not isinstance(data, dict):
        return None
    length = data.get("lengthInMinutes", data.get("length"))
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        return None
    raw = data.get("lengthInMinutesOptions") or []
    options = tuple(sorted({o for o in raw if isinstance(o, int) and not isinstance(o, bool) and o >= 1}))
    return EventTypeLengths(event_type_id, length, options)


def length_for(lengths: EventTypeLengths, minutes: int) -> LengthChoice:
    if lengths.options:
        if minutes in lengths.options:
            return LengthChoice(length_in_minutes=minutes, default_fits=minutes == lengths.length)
        offered = ", ".join(map(str, lengths.options))
    elif minutes == lengths.length:
        return LengthChoice()
    else:
        offered = str(lengths.length)
    return LengthChoice(
        refused=Verdict(
            Category.EVENT_TYPE_LENGTH,
            f"event type {lengths.id} cannot be booked for {minutes} minutes (its length(s): {offered}): "
            f"give event type {lengths.id} a length of {minutes} minutes (or the service the event type that has it), "
            "then requeue",
        ),
        default_fits=False,
    )


class EventTypeCache:
    def __init__(self, client: CalcomClient, ttl_s: float = 300.0) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._known: dict[int, tuple[float, EventTypeLengths]] = {}
        self._reading: dict[int, asyncio.Lock] = {}  # one read per event type at a time: the others wait for it

    def forget(self, event_type_id: int) -> None:
        self._known.pop(event_type_id, None)

    async def lengths(self, event_type_id: int) -> tuple[EventTypeLengths | None, Exchange | None]:
        """The event type's lengths, and the exchange that read them (None when they came from the cache). A
        failed read gives None and its exchange (whose verdict says why)."""
        hit = self._known.get(event_type_id)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1], None
        async with self._reading.setdefault(event_type_id, asyncio.Lock()):
            hit = self._known.get(event_type_id)  # read meanwhile by the request this one waited for
            if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1], None
            return await self._read(event_type_id)

    async def _read(self, event_type_id: int) -> tuple[EventTypeLengths | None, Exchange | None]:
        ex = await self.client.send(
            "event_type",
            "GET",
            f"/v2/event-types/{event_type_id}",
            expects="object",
            api_version=EVENT_TYPES_API_VERSION,
        )
        if ex.verdict.category != Category.OK:
            return None, ex
        found = parse_lengths(event_type_id, ex.body)
        if found is None:
            ex.verdict = Verdict(
                Category.MALFORMED_RESPONSE, f"event type {event_type_id}: the answer names no length in minutes"
            )
            return None, ex
        self._known[event_type_id] = (time.monotonic(), found)
        return found, ex
