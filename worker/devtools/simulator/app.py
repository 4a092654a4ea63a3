"""The aiohttp application: /v2 routes as Cal.com API v2 answers them, plus /_sim admin routes (admin.py).

Per /v2 request: the throttler (every /v2 request counts and gets the X-RateLimit-* headers, 401s and 404s too),
version routing (a version the route's controller does not serve is an unmatched route: 404), the route's guards,
then the handler, around which injected faults act. Input validation is in `errors` (the pipes' rules), Cal.com's
booking rules in `rules` and `bookings`, list queries in `listing`, event type shapes in `eventtypes`.

Who calls: a key of a registered user (POST /_sim/users) is that user; a key from the config (`api_keys`) is the
built-in account user, who hosts and administers every event type ("host key" rules apply), as before users.

Every request remembers the reset generation it started in: one that straddles POST /_sim/reset (a hanging
timeout fault, say) is not counted in the new generation's stats and stores nothing in it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from worker.devtools.simulator import admin, errors, eventtypes
from worker.devtools.simulator.bookings import Bookings
from worker.devtools.simulator.config import SimulatorConfig
from worker.devtools.simulator.delivery import WebhookDispatcher
from worker.devtools.simulator.errors import JSON, ApiError, dumps, not_found
from worker.devtools.simulator.faults import Fault, FaultInjector
from worker.devtools.simulator.listing import pagination, parse_list_query, run_list_query
from worker.devtools.simulator.model import ACCOUNT_USER, Booking, User, iso_ms, now_ms
from worker.devtools.simulator.state import Store
from worker.devtools.simulator.throttler import Throttler, tracker

LEGACY_VERSION = "2024-04-15"
EVENT_TYPES_VERSION = "2024-06-14"
BOOKING_VERSIONS = frozenset({"2024-08-13", "2026-02-25"})
KNOWN_VERSIONS = BOOKING_VERSIONS | {
    LEGACY_VERSION,
    "2024-05-21",
    "2024-06-11",
    EVENT_TYPES_VERSION,
    "2024-09-04",
    "2026-05-01",
}
# operation → (stats key, versions its controller serves, guard)
ROUTES: dict[str, tuple[str, frozenset[str], str]] = {
    "create": ("POST /v2/bookings", BOOKING_VERSIONS | {LEGACY_VERSION}, "optional"),
    "list": ("GET /v2/bookings", BOOKING_VERSIONS | {LEGACY_VERSION}, "permissions"),
    "get": ("GET /v2/bookings/{uid}", BOOKING_VERSIONS | {LEGACY_VERSION}, "optional"),
    "cancel": ("POST /v2/bookings/{uid}/cancel", BOOKING_VERSIONS | {LEGACY_VERSION}, "optional"),
    "reschedule": ("POST /v2/bookings/{uid}/reschedule", BOOKING_VERSIONS, "optional"),
    "event_type": (
        "GET /v2/event-types/{id}",
        frozenset({EVENT_TYPES_VERSION, LEGACY_VERSION, "2024-06-11"}),
        "permissions",
    ),
    "team_event_type": ("GET /v2/teams/{teamId}/event-types/{id}", KNOWN_VERSIONS, "required"),
    "me": ("GET /v2/me", KNOWN_VERSIONS, "required"),
}
OTHER_ENDPOINT = "other /v2"
PERMISSIONS_MESSAGE = (
    "PermissionsGuard - no authentication provided. Provide either authorization bearer token containing managed "
    "user access token or oAuth client id in 'x-cal-client-id' header."
)
NO_AUTH_MESSAGE = (
    "ApiAuthStrategy - No authentication method provided. Either pass an API key as 'Bearer' header or OAuth "
    "client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers"
)
INVALID_KEY_MESSAGE = "ApiAuthStrategy - api key - Your api key is not valid"
INVALID_TOKEN_MESSAGE = "ApiAuthStrategy - access token - Invalid Access Token."
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
    caller: User | None  # None: no credentials (a public booking)
    path: str
    tracker: str = ""  # whom the request counts against (the throttler's: a key's hash, never the key)
    arrived_ms: int = 0


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = Store()
        self.store.put_event_types(config.event_types)
        self.bookings = Bookings(self.store, config.clock_offset_s)
        self.throttler = Throttler(config.rate_limit, config.rate_limit_window_s, config.rate_limit_block_s)
        self.faults = FaultInjector(config)
        self.webhooks = WebhookDispatcher(config, self.bookings.now)
        self.bookings.listeners.append(self.webhooks.booking_changed)
        self._keys = frozenset(config.api_keys)
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited = 0
        self.by_key: defaultdict[str, Counter[str]] = defaultdict(Counter)  # tracker → requests, rateLimited
        self.generation = 0  # bumped by every reset

    # -- the /v2 pipeline -----------------------------------------------------------------------
    def route(self, op: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, op, handler)

        return serve

    def _throttle(self, request: web.Request, endpoint: str) -> tuple[dict[str, str], web.Response | None]:
        """Rate-limit headers for the answer, and the 429 to send instead when the tracker is over its limit."""
        who = tracker(request.headers.get("Authorization"), request.remote)
        decision = self.throttler.hit(who)
        headers = decision.headers()
        self.by_key[who]["requests"] += 1
        if decision.allowed:
            return headers, None
        self.by_key[who]["rateLimited"] += 1
        self.rate_limited += 1
        body = errors.throttled(request.path_qs).body
        return headers, self._respond(endpoint, self.generation, 429, body, headers=headers)

    async def _serve(self, request: web.Request, op: str, handler: Handler) -> web.StreamResponse:
        endpoint, served, guard = ROUTES[op]
        gen, path, arrived = self.generation, request.path_qs, now_ms()
        headers, refused = self._throttle(request, endpoint)
        if refused is not None:
            return refused
        version = request.headers.get("cal-api-version", LEGACY_VERSION)
        if version not in KNOWN_VERSIONS:
            version = LEGACY_VERSION  # Cal.com's version extractor falls back silently
        if version not in served:
            err = errors.route_not_found(request.method, path)
            return self._respond(endpoint, gen, err.status, err.body, headers=headers)

        await request.read()  # the body (≤ client_max_size) before anything waits, so a reset can't split it
        fault: Fault | None = None
        try:
            caller = self._authenticate(request, path, guard)
            fault = self.faults.decide(op)
            if (delay := self.faults.latency_s()) > 0:
                await asyncio.sleep(delay)
            if gen != self.generation:
                return web.json_response({"error": "the simulator was reset during this request"}, status=503)
            if fault is Fault.FAIL_5XX:
                self.faults.counts[fault] += 1
                raise errors.db_fault(path)
            if fault is Fault.CONFLICT:
                self.faults.counts[fault] += 1
                raise errors.raw(409, "booking_conflict_error")
            who = tracker(request.headers.get("Authorization"), request.remote)
            status, body = await handler(request, Ctx(version, caller, path, who, arrived))
        except ApiError as exc:
            status, body = exc.status, exc.body
        if fault is None:
            return self._respond(endpoint, gen, status, body, headers=headers)
        outcome = await self.faults.apply(fault, request, status, body, path)
        if outcome is None:
            if gen == self.generation:
                self.requests[endpoint]["reset"] += 1
            return web.Response(status=status)  # writing it fails quietly: the connection is gone
        return self._respond(endpoint, gen, *outcome, headers=headers)

    def _respond(
        self,
        endpoint: str,
        gen: int,
        status: int,
        body: JSON,
        text: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if gen == self.generation:
            self.requests[endpoint][str(status)] += 1
        return web.Response(
            text=dumps(body) if text is None else text, status=status, content_type="application/json", headers=headers
        )

    def _authenticate(self, request: web.Request, path: str, guard: str) -> User | None:
        """The caller, by the route's guard: "optional" (none is fine), "permissions" (PermissionsGuard first:
        none is a 403), "required" (ApiAuthGuard first: none is a 401)."""
        header = request.headers.get("Authorization")
        token = header.replace("Bearer ", "", 1) if header else ""
        if not token:
            if guard == "permissions":
                raise errors.http_exception(403, PERMISSIONS_MESSAGE, path)
            if guard == "required":
                raise errors.http_exception(401, NO_AUTH_MESSAGE, path)
            return None
        if not token.startswith("cal_"):
            raise errors.http_exception(401, INVALID_TOKEN_MESSAGE, path)
        if user := self.store.user_for_key(token):
            return user
        if token in self._keys:
            return ACCOUNT_USER
        raise errors.http_exception(401, INVALID_KEY_MESSAGE, path)

    async def v2_unmatched(self, request: web.Request) -> web.StreamResponse:
        headers, refused = self._throttle(request, OTHER_ENDPOINT)
        if refused is not None:
            return refused
        err = errors.route_not_found(request.method, request.path_qs)
        return self._respond(OTHER_ENDPOINT, self.generation, err.status, err.body, headers=headers)

    # -- booking handlers -----------------------------------------------------------------------
    async def create(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        body = await _read_json(request, ctx.path)
        if ctx.version == LEGACY_VERSION:
            inp = errors.parse_legacy_create(body, ctx.path)
            [booking] = self.bookings.create(inp, ctx.caller, ctx.path, recurring=False)
            return 201, {"status": "success", "data": _legacy_json(booking)}
        made = self.bookings.create(errors.parse_create(body, ctx.version, ctx.path), ctx.caller, ctx.path)
        for b in made:
            b.made_by, b.requested_ms = ctx.tracker, ctx.arrived_ms
        data: Any = [b.to_api() for b in made] if made[0].recurring_uid else made[0].to_api()
        return 201, {"status": "success", "data": data}

    async def get(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        found = self.bookings.get(request.match_info["uid"], ctx.path)
        data: Any = [b.to_api() for b in found] if isinstance(found, list) else found.to_api()
        return 200, {"status": "success", "data": data}

    async def list_bookings(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        q = parse_list_query(request.query, ctx.path)
        assert ctx.caller is not None  # the permissions guard let no anonymous request through
        page, total = run_list_query(self.store, q, self.bookings.now(), ctx.caller)
        data = [b.to_api() for b in page]
        return 200, {"status": "success", "data": data, "pagination": pagination(q.skip, q.take, total)}

    async def cancel(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        body = errors.parse_simple_body(await _read_json(request, ctx.path), ctx.path, CANCEL_FIELDS)
        done = self.bookings.cancel(request.match_info["uid"], body, ctx.caller, ctx.path)
        data: Any = [b.to_api() for b in done] if isinstance(done, list) else done.to_api()
        return 200, {"status": "success", "data": data}

    async def reschedule(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        body = errors.parse_simple_body(await _read_json(request, ctx.path), ctx.path, RESCHEDULE_FIELDS, ("start",))
        new = self.bookings.reschedule(request.match_info["uid"], body, ctx.caller, ctx.path)
        new.made_by, new.requested_ms = ctx.tracker, ctx.arrived_ms
        return 201, {"status": "success", "data": new.to_api()}

    # -- event types and profile ----------------------------------------------------------------
    async def get_event_type(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        raw_id = request.match_info["id"]
        if ctx.version != EVENT_TYPES_VERSION and not raw_id.isdigit():  # the older controller's ParseIntPipe
            raise errors.bad_request("Validation failed (numeric string is expected)", ctx.path)
        et = self.store.event_types.get(int(raw_id)) if raw_id.isdigit() else None
        assert ctx.caller is not None
        if et is None or not ctx.caller.administers(et):  # getEventTypeByIdIfAuthorized: null either way
            raise not_found(f"Event type with id {raw_id} not found", ctx.path)
        if ctx.version == EVENT_TYPES_VERSION:
            return 200, {"status": "success", "data": eventtypes.event_type_output(et)}
        return 200, {"status": "success", "data": eventtypes.legacy_event_type_output(et)}

    async def get_team_event_type(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        raw_team, raw_id = request.match_info["teamId"], request.match_info["id"]
        if not raw_team.isdigit():  # ParseIntPipe
            raise errors.bad_request("Validation failed (numeric string is expected)", ctx.path)
        team, caller = int(raw_team), ctx.caller
        assert caller is not None
        role = caller.role_in(team)
        if role is None:
            raise errors.http_exception(403, f"RolesGuard - User is not a member of the team with id={team}.", ctx.path)
        if role == "MEMBER":
            message = (
                f"RolesGuard - user with id={caller.id} does not have the minimum required role=TEAM_ADMIN within "
                f"team with id={team}."
            )
            raise errors.http_exception(403, message, ctx.path)
        et = self.store.event_types.get(int(raw_id)) if raw_id.isdigit() else None
        if et is None or et.team_id != team:
            raise not_found(f"Event type with id {raw_id} not found", ctx.path)
        return 200, {"status": "success", "data": eventtypes.team_event_type_output(et)}

    async def me(self, request: web.Request, ctx: Ctx) -> tuple[int, JSON]:
        assert ctx.caller is not None
        return 200, {"status": "success", "data": eventtypes.me_output(ctx.caller)}

    # -- admin ----------------------------------------------------------------------------------
    def stats(self) -> JSON:
        counts = self.store.counts()
        return {
            "requests": {ep: dict(c) for ep, c in self.requests.items()},
            "requestsTotal": sum(sum(c.values()) for c in self.requests.values()),
            "rateLimited": self.rate_limited,
            "byKey": {who: dict(c) for who, c in sorted(self.by_key.items())},
            "faults": {kind.value: self.faults.counts[kind] for kind in Fault},
            "bookings": counts,
            "bookingsStored": counts["total"],
            "eventTypes": len(self.store.event_types),
            "users": len(self.store.users),
            "generation": self.generation,
            "webhooks": self.webhooks.stats(),
        }

    def reset(self, accounts: bool) -> None:
        """Bookings, counters, rate limits and the fault RNG start over (and event types and users if
        `accounts`); requests still in flight belong to the old generation."""
        self.generation += 1
        self.store.clear_bookings()
        if accounts:
            self.store.clear_accounts()
        self.requests.clear()
        self.rate_limited = 0
        self.by_key.clear()
        self.faults.counts.clear()
        self.faults.scripted.clear()
        self.throttler.reset()
        self.faults.configure(self.config, reseed=True)
        self.webhooks.reset(accounts)

    def script_fault(self, op: str, fault: str) -> int:
        """The next request of operation `op` (a ROUTES key) gets `fault` ("none": none, so a later one gets the next
        entry); ValueError if either is unknown."""
        if op not in ROUTES:
            raise ValueError(f"op must be one of {', '.join(ROUTES)}")
        try:
            kind = None if fault == "none" else Fault(fault)
        except ValueError:
            raise ValueError(f"fault must be none or one of {', '.join(f.value for f in Fault)}") from None
        return self.faults.script(op, kind)

    def apply_config(self, new: SimulatorConfig, reseed: bool = False) -> None:
        old, self.config = self.config, new
        self._keys = frozenset(new.api_keys)
        self.bookings.clock_offset_ms = round(new.clock_offset_s * 1000)
        self.faults.configure(new, reseed=reseed)
        self.webhooks.configure(new, reseed=reseed)
        limits = (new.rate_limit, new.rate_limit_window_s, new.rate_limit_block_s)
        if limits != (old.rate_limit, old.rate_limit_window_s, old.rate_limit_block_s):
            self.throttler.configure(*limits)


async def _read_json(request: web.Request, path: str) -> Any:
    return errors.parse_json_body(await request.read(), path)


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


SIMULATOR = web.AppKey("simulator", Simulator)


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    if "X-Request-Id" not in response.headers:
        response.headers["X-Request-Id"] = request.headers.get("X-Request-Id") or uuid.uuid4().hex


def create_app(config: SimulatorConfig | None = None) -> web.Application:
    sim = Simulator(config or SimulatorConfig())
    app = web.Application(client_max_size=1024**2)
    app[SIMULATOR] = sim
    app.on_response_prepare.append(_stamp_request_id)

    async def close_webhooks(_: web.Application) -> None:
        await sim.webhooks.close()

    app.on_cleanup.append(close_webhooks)
    r = app.router
    r.add_post("/v2/bookings", sim.route("create", sim.create))
    r.add_get("/v2/bookings", sim.route("list", sim.list_bookings), allow_head=False)
    r.add_get("/v2/bookings/{uid}", sim.route("get", sim.get), allow_head=False)
    r.add_post("/v2/bookings/{uid}/cancel", sim.route("cancel", sim.cancel))
    r.add_post("/v2/bookings/{uid}/reschedule", sim.route("reschedule", sim.reschedule))
    r.add_get("/v2/event-types/{id}", sim.route("event_type", sim.get_event_type), allow_head=False)
    team_route = sim.route("team_event_type", sim.get_team_event_type)
    r.add_get("/v2/teams/{teamId}/event-types/{id}", team_route, allow_head=False)
    r.add_get("/v2/me", sim.route("me", sim.me), allow_head=False)
    r.add_route("*", "/v2", sim.v2_unmatched)
    r.add_route("*", "/v2/{tail:.*}", sim.v2_unmatched)
    admin.add_routes(r, sim)
    return app
