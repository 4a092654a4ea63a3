"""The aiohttp application: /v2 booking routes as Cal.com API v2 answers them, plus /_sim admin routes.

Per /v2 request: the throttler (every /v2 request counts and gets the X-RateLimit-* headers, 401s and 404s too),
version routing (an unserved version is an unmatched route: 404), auth guards, then the handler, around which
injected faults act. Input validation is in `errors` (the pipes' rules), list queries in `state`. Texts follow
calcom-api.md.

The simulated account: every valid API key belongs to the host of every event type ("host key" rules apply).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from worker.devtools.simulator import errors
from worker.devtools.simulator.config import SimulatorConfig
from worker.devtools.simulator.errors import JSON, ApiError, CreateInput, bad_request, dumps, not_found
from worker.devtools.simulator.faults import Fault, FaultInjector
from worker.devtools.simulator.ratelimit import RateLimiter, tracker
from worker.devtools.simulator.state import (
    Attendee,
    Booking,
    EventType,
    Store,
    iso_ms,
    new_uid,
    now_ms,
    pagination,
    parse_list_query,
    run_list_query,
)

LEGACY_VERSION = "2024-04-15"
SERVED_VERSIONS = frozenset({"2024-08-13", "2026-02-25"})
KNOWN_VERSIONS = SERVED_VERSIONS | {
    LEGACY_VERSION,
    "2024-05-21",
    "2024-06-11",
    "2024-06-14",
    "2024-09-04",
    "2026-05-01",
}
ENDPOINTS = {
    "create": "POST /v2/bookings",
    "list": "GET /v2/bookings",
    "get": "GET /v2/bookings/{uid}",
    "cancel": "POST /v2/bookings/{uid}/cancel",
    "reschedule": "POST /v2/bookings/{uid}/reschedule",
    "other": "other /v2",
}
PERMISSIONS_MESSAGE = (
    "PermissionsGuard - no authentication provided. Provide either authorization bearer token containing managed "
    "user access token or oAuth client id in 'x-cal-client-id' header."
)
INVALID_KEY_MESSAGE = "ApiAuthStrategy - api key - Your api key is not valid"
INVALID_TOKEN_MESSAGE = "ApiAuthStrategy - access token - Invalid Access Token."
PAST_MESSAGE = "Attempting to book a meeting in the past."
BUSY_MESSAGE = "User either already has booking at this time or is not available"
LENGTH_NOT_MULTIPLE = (
    "Can't specify 'lengthInMinutes' because event type does not have multiple possible lengths. Please, remove "
    "the 'lengthInMinutes' field from the request."
)
LENGTH_NOT_POSSIBLE = (
    "Provided 'lengthInMinutes' is not one of the possible lengths for the event type. The possible lengths are: "
)
HOST_REASON_MESSAGE = "Cancellation reason is required when you are the host"
CANCEL_FIELDS = {
    "cancellationReason": (str, "cancellationReason must be a string"),
    "cancelSubsequentBookings": (bool, "cancelSubsequentBookings must be a boolean value"),
    "seatUid": (str, "seatUid must be a string"),
}
RESCHEDULE_FIELDS = {
    "start": (str, "start must be a valid ISO 8601 date string"),
    "rescheduledBy": (str, "rescheduledBy must be a string"),
    "reschedulingReason": (str, "reschedulingReason must be a string"),
    "emailVerificationCode": (str, "emailVerificationCode must be a string"),
    "seatUid": (str, "seatUid must be a string"),
}

Handler = Callable[[web.Request, "Ctx"], Awaitable[tuple[int, JSON]]]


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a handler needs to know about the request beyond the request itself."""

    version: str
    is_host: bool  # authenticated with a valid API key: the account that hosts every event type
    path: str


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = Store()
        self.store.put_event_types(config.event_types)
        self.limiter = RateLimiter(config.rate_limit, config.rate_limit_window_s, config.rate_limit_block_s)
        self.faults = FaultInjector(config)
        self._keys = frozenset(config.api_keys)
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited = 0

    # -- the /v2 pipeline -----------------------------------------------------------------------
    def route(self, op: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, op, handler)

        return serve

    def _throttle(self, request: web.Request, endpoint: str) -> tuple[dict[str, str], web.Response | None]:
        """Rate-limit headers for the answer, and the 429 to send instead when the tracker is over its limit."""
        decision = self.limiter.hit(tracker(request.headers.get("Authorization"), request.remote))
        headers = decision.headers()
        if decision.allowed:
            return headers, None
        self.rate_limited += 1
        return headers, self._respond(endpoint, 429, errors.throttled(request.path_qs).body, headers=headers)

    async def _serve(self, request: web.Request, op: str, handler: Handler) -> web.StreamResponse:
        endpoint = ENDPOINTS[op]
        path = request.path_qs
        headers, refused = self._throttle(request, endpoint)
        if refused is not None:
            return refused
        version = request.headers.get("cal-api-version", LEGACY_VERSION)
        if version not in KNOWN_VERSIONS:
            version = LEGACY_VERSION  # Cal.com's version extractor falls back silently
        if version not in SERVED_VERSIONS and not (version == LEGACY_VERSION and op != "reschedule"):
            err = errors.route_not_found(request.method, path)
            return self._respond(endpoint, err.status, err.body, headers=headers)

        fault: Fault | None = None
        try:
            is_host = self._authenticate(request, path, required=op == "list")
            fault = self.faults.decide(op)
            if (delay := self.faults.latency_s()) > 0:
                await asyncio.sleep(delay)
            if fault is Fault.FAIL_5XX:
                self.faults.counts[fault] += 1
                raise errors.db_fault(path)
            if fault is Fault.CONFLICT:
                self.faults.counts[fault] += 1
                raise errors.raw(409, "booking_conflict_error")
            status, body = await handler(request, Ctx(version, is_host, path))
        except ApiError as exc:
            status, body = exc.status, exc.body
        if fault is None:
            return self._respond(endpoint, status, body, headers=headers)
        outcome = await self.faults.apply(fault, request, status, body, path)
        if outcome is None:
            self.requests[endpoint]["reset"] += 1
            return web.Response(status=status)  # writing it fails quietly: the connection is gone
        return self._respond(endpoint, *outcome, headers=headers)

    def _respond(
        self, endpoint: str, status: int, body: JSON, text: str | None = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.requests[endpoint][str(status)] += 1
        return web.Response(
            text=dumps(body) if text is None else text, status=status, content_type="application/json", headers=headers
        )

    def _authenticate(self, request: web.Request, path: str, required: bool) -> bool:
        header = request.headers.get("Authorization")
        token = header.replace("Bearer ", "", 1) if header else ""
        if not token:
            if required:
                raise errors.http_exception(403, PERMISSIONS_MESSAGE, path)
            return False
        if token.startswith("cal_"):
            if token in self._keys:
                return True
            raise errors.http_exception(401, INVALID_KEY_MESSAGE, path)
        raise errors.http_exception(401, INVALID_TOKEN_MESSAGE, path)

    async def v2_unmatched(self, request: web.Request) -> web.StreamResponse:
        headers, refused = self._throttle(request, ENDPOINTS["other"])
        if refused is not None:
            return refused
        err = errors.route_not_found(request.method, request.path_qs)
        return self._respond(ENDPOINTS["other"], err.status, err.body, headers=headers)

    # -- booking handlers -----------------------------------------------------------------------
    async def create(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        body = await _read_json(request, ctx.path)
        if ctx.version == LEGACY_VERSION:
            return 201, {
                "status": "success",
                "data": _legacy_json(self._book(errors.parse_legacy_create(body, ctx.path), ctx)),
            }
        inp = errors.parse_create(body, ctx.version, ctx.path)
        return 201, {"status": "success", "data": self._book(inp, ctx).to_api()}

    def _event_type(self, inp: CreateInput, path: str) -> EventType:
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

    def _book(self, inp: CreateInput, ctx: Ctx) -> Booking:
        et = self._event_type(inp, ctx.path)
        minutes = et.length_in_minutes
        if inp.length is not None:
            if not et.length_options:
                raise bad_request(LENGTH_NOT_MULTIPLE, ctx.path)
            if inp.length not in et.length_options:
                raise bad_request(LENGTH_NOT_POSSIBLE + ", ".join(map(str, et.length_options)), ctx.path)
            minutes = inp.length
        if issues := errors.response_issues(inp.email, inp.phone):
            raise errors.zod(ctx.path, issues)
        now = now_ms()
        end_ms = inp.start_ms + minutes * 60_000
        self._check_slot(et.host_user_id, inp.start_ms, end_ms, now, ctx.path, ctx.is_host and inp.allow_conflicts)
        email = inp.email or re.sub(r"\D", "", inp.phone or "") + "@sms.cal.com"
        responses: JSON = {"name": inp.name, "email": email}
        if inp.phone:
            responses["attendeePhoneNumber"] = inp.phone
        responses["guests"] = list(inp.guests)
        responses.update(inp.responses)
        uid = new_uid()
        location = _location(inp.location)
        notes = inp.responses.get("notes")
        booking = Booking(
            id=self.store.next_id(),
            uid=uid,
            event_type=et,
            start_ms=inp.start_ms,
            end_ms=end_ms,
            attendee=Attendee(inp.name, email, inp.time_zone, inp.language, inp.phone),
            title=f"{et.title} between {et.host_name} and {inp.name}",
            created_ms=now,
            description=notes if isinstance(notes, str) else "",
            guests=list(inp.guests),
            metadata=inp.metadata,
            responses=responses,
            location=location,
            meeting_url=inp.meeting_url
            or (f"https://app.cal.com/video/{uid}" if location == "integrations:daily" else None),
        )
        self.store.add(booking)
        return booking

    def _check_slot(
        self, host: int, start: int, end: int, now: int, path: str, allow_conflicts: bool, moving: Booking | None = None
    ) -> None:
        if start < now:
            raise bad_request(PAST_MESSAGE, path)
        if not allow_conflicts and self.store.conflict(host, start, end, moving.uid if moving else None):
            raise bad_request(BUSY_MESSAGE, path)
        same_slot = moving is not None and (moving.start_ms, moving.end_ms) == (start, end)
        if not same_slot and self.store.idempotency_taken(host, start, end):
            raise errors.raw(409, "booking_conflict_error")  # Booking.idempotencyKey unique violation

    async def get(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        uid = request.match_info["uid"]
        booking = self.store.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} was not found in the database", ctx.path)
        return 200, {"status": "success", "data": booking.to_api()}

    async def list_bookings(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        q = parse_list_query(request.query, ctx.path)
        page, total = run_list_query(self.store, q, now_ms())
        data = [b.to_api() for b in page]
        return 200, {"status": "success", "data": data, "pagination": pagination(q.skip, q.take, total)}

    async def cancel(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        uid = request.match_info["uid"]
        body = errors.parse_simple_body(await _read_json(request, ctx.path), ctx.path, CANCEL_FIELDS)
        booking = self.store.bookings.get(uid)
        if booking is None:
            raise not_found(f"Booking with uid={uid} not found", ctx.path)
        if body.get("seatUid") is not None:
            raise bad_request("Invalid seatUid: this seat does not exist or has already been cancelled.", ctx.path)
        if not booking.active:
            raise bad_request(
                f"Can't cancel booking with uid={uid} because it has been cancelled already. Please provide uid of a "
                "booking that is not cancelled.",
                ctx.path,
            )
        reason = body.get("cancellationReason")
        if ctx.is_host and not reason:
            raise errors.raw(400, HOST_REASON_MESSAGE)
        self.store.deactivate(booking, "cancelled", now_ms())
        booking.cancellation_reason = reason or None
        booking.cancelled_by_email = booking.event_type.host_email if ctx.is_host else None
        if body.get("cancelSubsequentBookings") is True:  # cancelled first, then this, as the real service does
            raise bad_request(f"Booking with bookingUid={uid} is not part of a recurring booking.", ctx.path)
        return 200, {"status": "success", "data": booking.to_api()}

    async def reschedule(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        uid = request.match_info["uid"]
        body = errors.parse_simple_body(await _read_json(request, ctx.path), ctx.path, RESCHEDULE_FIELDS, ("start",))
        old = self.store.bookings.get(uid)
        if old is None:
            raise not_found(f"Booking with uid={uid} was not found in the database", ctx.path)
        if not old.active:
            if to := old.rescheduled_to_uid:
                raise bad_request(
                    f"Can't reschedule booking with uid={uid} because it has been cancelled and rescheduled already "
                    f"to booking with uid={to}. You probably want to reschedule {to} instead by passing it within "
                    "the request URL.",
                    ctx.path,
                )
            raise bad_request(
                f"Can't reschedule booking with uid={uid} because it has been cancelled. Please provide uid of a "
                "booking that is not cancelled.",
                ctx.path,
            )
        start = errors.parse_iso_ms(body["start"])
        assert start is not None
        end, now = start + (old.end_ms - old.start_ms), now_ms()
        self._check_slot(old.host_user_id, start, end, now, ctx.path, False, moving=old)
        reason, by = body.get("reschedulingReason"), body.get("rescheduledBy")
        new = dataclasses.replace(
            old,
            id=self.store.next_id(),
            uid=new_uid(),
            start_ms=start,
            end_ms=end,
            created_ms=now,
            updated_ms=None,
            attendee=dataclasses.replace(old.attendee),
            guests=list(old.guests),
            metadata=dict(old.metadata),
            responses=dict(old.responses),
            rescheduling_reason=reason,
            rescheduled_by_email=by,
            rescheduled_from_uid=old.uid,
        )
        self.store.deactivate(old, "cancelled", now)
        old.rescheduled_to_uid, old.rescheduling_reason, old.rescheduled_by_email = new.uid, reason, by
        self.store.add(new)
        return 201, {"status": "success", "data": new.to_api()}

    # -- admin ----------------------------------------------------------------------------------
    async def admin_event_types(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                payload = await request.json()
                items = payload if isinstance(payload, list) else [payload]
                event_types = [EventType.from_json(item) for item in items]
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            self.store.put_event_types(event_types)
        return web.json_response({"eventTypes": [et.to_json() for et in self.store.event_types.values()]})

    async def admin_bookings(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        key, value = q.get("metadataKey"), q.get("metadataValue")
        status, uid, email = q.get("status"), q.get("uid"), q.get("attendeeEmail")
        found = []
        for b in self.store.bookings.values():
            if key is not None and (key not in b.metadata or (value is not None and _js_str(b.metadata[key]) != value)):
                continue
            if (status and b.status != status) or (uid and b.uid != uid):
                continue
            if email and b.attendee.email.lower() != email.lower():
                continue
            found.append(b.to_api())
        return web.json_response({"bookings": found, "count": len(found)})

    async def admin_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())

    def stats(self) -> JSON:
        counts = self.store.counts()
        return {
            "requests": {ep: dict(c) for ep, c in self.requests.items()},
            "requestsTotal": sum(sum(c.values()) for c in self.requests.values()),
            "rateLimited": self.rate_limited,
            "faults": {kind.value: self.faults.counts[kind] for kind in Fault},
            "bookings": counts,
            "bookingsStored": counts["total"],
            "eventTypes": len(self.store.event_types),
        }

    async def admin_reset(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            return web.json_response({"error": f"invalid JSON: {exc}"}, status=400)
        self.store.clear_bookings()
        if isinstance(payload, dict) and payload.get("eventTypes") is True:
            self.store.event_types.clear()
        self.requests.clear()
        self.rate_limited = 0
        self.faults.counts.clear()
        self.limiter.reset()
        self.faults.configure(self.config, reseed=True)
        return web.json_response({"ok": True, "eventTypes": len(self.store.event_types)})

    async def admin_config(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                new = self.config.updated(changes)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            self.apply_config(new, reseed="seed" in changes)
        return web.json_response(self.config.public())

    def apply_config(self, new: SimulatorConfig, reseed: bool = False) -> None:
        old, self.config = self.config, new
        self._keys = frozenset(new.api_keys)
        self.faults.configure(new, reseed=reseed)
        limits = (new.rate_limit, new.rate_limit_window_s, new.rate_limit_block_s)
        if limits != (old.rate_limit, old.rate_limit_window_s, old.rate_limit_block_s):
            self.limiter.configure(*limits)


async def _read_json(request: web.Request, path: str) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}  # Express hands Nest an empty object
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"Unexpected token in JSON at position {getattr(exc, 'pos', 0)}", path) from None


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


def _legacy_json(b: Booking) -> JSON:
    """A created booking as the 2024-04-15 endpoint returns it (the core booking row, roughly)."""
    et = b.event_type
    return {
        "id": b.id,
        "uid": b.uid,
        "userId": et.host_user_id,
        "eventTypeId": et.id,
        "title": b.title,
        "description": b.description,
        "startTime": iso_ms(b.start_ms),
        "endTime": iso_ms(b.end_ms),
        "status": b.status.upper(),
        "location": b.location,
        "metadata": dict(b.metadata),
        "responses": dict(b.responses),
        "createdAt": iso_ms(b.created_ms),
        "user": {"id": et.host_user_id, "name": et.host_name, "email": et.host_email, "username": et.host_username},
        "attendees": [{"name": b.attendee.name, "email": b.attendee.email, "timeZone": b.attendee.time_zone}],
    }


def _js_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


SIMULATOR = web.AppKey("simulator", Simulator)


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    if "X-Request-Id" not in response.headers:
        response.headers["X-Request-Id"] = request.headers.get("X-Request-Id") or uuid.uuid4().hex


def create_app(config: SimulatorConfig | None = None) -> web.Application:
    sim = Simulator(config or SimulatorConfig())
    app = web.Application(client_max_size=1024**2)
    app[SIMULATOR] = sim
    app.on_response_prepare.append(_stamp_request_id)
    r = app.router
    r.add_post("/v2/bookings", sim.route("create", sim.create))
    r.add_get("/v2/bookings", sim.route("list", sim.list_bookings), allow_head=False)
    r.add_get("/v2/bookings/{uid}", sim.route("get", sim.get), allow_head=False)
    r.add_post("/v2/bookings/{uid}/cancel", sim.route("cancel", sim.cancel))
    r.add_post("/v2/bookings/{uid}/reschedule", sim.route("reschedule", sim.reschedule))
    r.add_route("*", "/v2", sim.v2_unmatched)
    r.add_route("*", "/v2/{tail:.*}", sim.v2_unmatched)
    r.add_route("*", "/_sim/event-types", sim.admin_event_types)
    r.add_get("/_sim/bookings", sim.admin_bookings)
    r.add_get("/_sim/stats", sim.admin_stats)
    r.add_post("/_sim/reset", sim.admin_reset)
    r.add_route("*", "/_sim/config", sim.admin_config)
    return app
