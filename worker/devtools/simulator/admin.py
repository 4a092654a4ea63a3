"""The /_sim admin routes: configuration, event types, users, bookings, stats, reset, and the outside changes.

- POST /_sim/event-types, /_sim/users: register (by id, replacing); GET lists them (users without their keys).
- GET /_sim/bookings (?metadataKey=&metadataValue=&status=&uid=&attendeeEmail=): each booking with `_sim`, the
  simulator's own record: `madeBy` (the tracker of the key whose request made it: `api_key_` + the first 32 hex
  of its SHA-256, never the key) and `requestedMs` (when that request arrived). GET /_sim/stats (`byKey`: requests
  and 429s per tracker).
- POST /_sim/reset `{"eventTypes": true}` also forgets event types and users.
- POST /_sim/webhooks `[{"subscriberUrl", "triggers", "active"?, "secret"?, "payloadTemplate"?, "id"?,
  "version"?}]` (Cal.com's webhook input; by id, replacing), GET lists them (without secrets), DELETE
  /_sim/webhooks/{id}; GET /_sim/webhooks/deliveries (?subscriptionId=&triggerEvent=&bookingUid=&fault=): what was
  sent (delivery.py).
- POST /_sim/faults `{"op", "fault"}`: the next request of that operation (create, get, list, cancel, reschedule,
  ...) gets that fault (faults.py), once; answers how many are scripted for it.
- POST /_sim/bookings/{uid}/reschedule `{"start", "by": "attendee"|"host", "reason"?, "lengthInMinutes"?}` and
  POST /_sim/bookings/{uid}/cancel `{"by", "reason"?}`: what the attendee (the link in Cal.com's e-mails) or the
  host (Cal.com's UI) does, under Cal.com's rules; a refusal comes in Cal.com's status and body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from worker.devtools.simulator.errors import ApiError, parse_iso_ms
from worker.devtools.simulator.model import EventType, User
from worker.devtools.simulator.webhooks import Subscription

if TYPE_CHECKING:
    from worker.devtools.simulator.app import Simulator

ACTORS = ("attendee", "host")


async def _payload(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def add_routes(r: web.UrlDispatcher, sim: Simulator) -> None:
    async def event_types(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                payload = await _payload(request)
                items = payload if isinstance(payload, list) else [payload]
                sim.store.put_event_types([EventType.from_json(item) for item in items])
            except ValueError as exc:
                return _bad(str(exc))
        return web.json_response({"eventTypes": [et.to_json() for et in sim.store.event_types.values()]})

    async def users(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                payload = await _payload(request)
                items = payload if isinstance(payload, list) else [payload]
                sim.store.put_users([User.from_json(item) for item in items])
            except ValueError as exc:
                return _bad(str(exc))
        return web.json_response({"users": [u.to_json() for u in sim.store.users.values()]})

    async def bookings(request: web.Request) -> web.StreamResponse:
        q = request.query
        key, value = q.get("metadataKey"), q.get("metadataValue")
        status, uid, email = q.get("status"), q.get("uid"), q.get("attendeeEmail")
        found = []
        for b in sim.store.bookings.values():
            if key is not None and (key not in b.metadata or (value is not None and _js_str(b.metadata[key]) != value)):
                continue
            if (status and b.status != status) or (uid and b.uid != uid):
                continue
            if email and b.attendee.email.lower() != email.lower():
                continue
            found.append({**b.to_api(), "_sim": {"madeBy": b.made_by, "requestedMs": b.requested_ms}})
        return web.json_response({"bookings": found, "count": len(found)})

    async def outside_reschedule(request: web.Request) -> web.StreamResponse:
        try:
            body = await _payload(request)
            start, by = parse_iso_ms(body.get("start")), body.get("by", "attendee")
            minutes, reason = body.get("lengthInMinutes"), body.get("reason")
            if start is None or by not in ACTORS or not isinstance(minutes, int | None):
                raise ValueError(
                    'the body is {"start": ISO-8601, "by": "attendee"|"host", "reason"?, "lengthInMinutes"?}'
                )
        except (ValueError, AttributeError) as exc:
            return _bad(str(exc))
        try:
            old, new = sim.bookings.outside_reschedule(
                request.match_info["uid"], start, by, reason, minutes, request.path
            )
        except ApiError as exc:
            return web.json_response(exc.body, status=exc.status)
        return web.json_response({"booking": new.to_api(), "previous": old.to_api()}, status=201)

    async def outside_cancel(request: web.Request) -> web.StreamResponse:
        try:
            body = await _payload(request)
            by, reason = body.get("by", "attendee"), body.get("reason")
            if by not in ACTORS or not isinstance(reason, str | None):
                raise ValueError('the body is {"by": "attendee"|"host", "reason"?: string}')
        except (ValueError, AttributeError) as exc:
            return _bad(str(exc))
        try:
            booking = sim.bookings.outside_cancel(request.match_info["uid"], by, reason, request.path)
        except ApiError as exc:
            return web.json_response(exc.body, status=exc.status)
        return web.json_response({"booking": booking.to_api()})

    async def webhooks(request: web.Request) -> web.StreamResponse:
        hooks = sim.webhooks
        if request.method == "POST":
            try:
                payload = await _payload(request)
                items = payload if isinstance(payload, list) else [payload]
                hooks.put([Subscription.from_json(item, hooks.new_id()) for item in items])
            except ValueError as exc:
                return _bad(str(exc))
        return web.json_response({"webhooks": [w.to_json() for w in hooks.subscriptions.values()]})

    async def delete_webhook(request: web.Request) -> web.StreamResponse:
        if not sim.webhooks.remove(request.match_info["id"]):
            return web.json_response({"error": "no such webhook"}, status=404)
        return web.json_response({"ok": True})

    async def deliveries(request: web.Request) -> web.StreamResponse:
        known = ("subscriptionId", "triggerEvent", "bookingUid", "fault", "status")
        found = sim.webhooks.deliveries(**{k: v for k, v in request.query.items() if k in known})
        return web.json_response({"deliveries": found, "count": len(found)})

    async def stats(request: web.Request) -> web.StreamResponse:
        return web.json_response(sim.stats())

    async def reset(request: web.Request) -> web.StreamResponse:
        try:
            payload = await _payload(request)
        except ValueError as exc:
            return _bad(str(exc))
        sim.reset(accounts=isinstance(payload, dict) and payload.get("eventTypes") is True)
        return web.json_response({"ok": True, "eventTypes": len(sim.store.event_types), "generation": sim.generation})

    async def script_fault(request: web.Request) -> web.StreamResponse:
        try:
            payload = await _payload(request)
            if not (isinstance(payload, dict) and isinstance(payload.get("op"), str)):
                raise ValueError('the body must be {"op": ..., "fault": ...}')
            queued = sim.script_fault(payload["op"], str(payload.get("fault")))
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response({"op": payload["op"], "scripted": queued})

    async def config(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                changes = await _payload(request)
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                new = sim.config.updated(changes)
            except ValueError as exc:
                return _bad(str(exc))
            sim.apply_config(new, reseed="seed" in changes)
        return web.json_response(sim.config.public())

    r.add_route("*", "/_sim/event-types", event_types)
    r.add_route("*", "/_sim/users", users)
    r.add_get("/_sim/bookings", bookings)
    r.add_post("/_sim/bookings/{uid}/reschedule", outside_reschedule)
    r.add_post("/_sim/bookings/{uid}/cancel", outside_cancel)
    r.add_route("*", "/_sim/webhooks", webhooks)
    r.add_get("/_sim/webhooks/deliveries", deliveries)
    r.add_delete("/_sim/webhooks/{id}", delete_webhook)
    r.add_get("/_sim/stats", stats)
    r.add_post("/_sim/reset", reset)
    r.add_route("*", "/_sim/config", config)
    r.add_post("/_sim/faults", script_fault)


def _js_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
