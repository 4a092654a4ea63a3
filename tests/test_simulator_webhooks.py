"""The simulator's webhooks over real HTTP: a simulator process, and a small aiohttp receiver in this process (its
own thread and event loop, 127.0.0.1, bodies capped) that records what arrives. What Cal.com sends, and where it
says so: /work/notes/webhooks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from worker.devtools.simulator import SimulatorConfig, SimulatorProcess
from worker.devtools.simulator.config import add_arguments, config_from_args, config_to_args

KEY = "cal_test_calsync"
HEADERS = {"cal-api-version": "2024-08-13", "Authorization": f"Bearer {KEY}"}
EVENT_TYPES = [
    {"id": 1, "lengthInMinutes": 30, "hostUserId": 100, "slug": "consult", "hostEmail": "host@example.com"},
    {"id": 2, "lengthInMinutes": 30, "hostUserId": 200, "recurrence": {"frequency": "weekly", "occurrences": 3}},
]
SECRET = "whsec_test"
ALL = ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def at(days: int = 3, hour: int = 9) -> str:
    return (TODAY + dt.timedelta(days=days, hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Receiver:
    """A real HTTP server that records each request (raw body, headers) and answers `status` after `delay_s`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status, self.delay_s = 200, 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = ""

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application(client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.received.append({"path": request.path, "method": request.method, "raw": raw, "headers": request.headers})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status in (301, 302, 307):
            return web.Response(status=self.status, headers={"Location": f"{self.url}/redirected"})
        return web.Response(status=self.status, text="ok")

    def __enter__(self) -> Receiver:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def bodies(self, path: str = "/hook") -> list[dict[str, Any]]:
        return [json.loads(r["raw"]) for r in self.received if r["path"] == path]

    def wait(self, count: int, path: str = "/hook", timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len([r for r in self.received if r["path"] == path]) < count:
            assert time.monotonic() < deadline, f"only {len(self.received)} webhooks arrived"
            time.sleep(0.02)
        return [r for r in self.received if r["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(SimulatorConfig(rate_limit=100_000, seed=11, webhook_timeout_s=2.0)) as s:
        yield s


@pytest.fixture
def api(sim: SimulatorProcess, receiver: Receiver) -> Iterator[httpx.Client]:
    sim.reset(event_types=True)
    sim.set_config(webhook_drop_rate=0, webhook_duplicate_rate=0, webhook_reorder_rate=0, webhook_delay_ms=[0, 0])
    sim.register_event_types(EVENT_TYPES)
    sim.register_webhooks([{"id": "main", "subscriberUrl": f"{receiver.url}/hook", "triggers": ALL, "secret": SECRET}])
    receiver.received.clear()
    receiver.status, receiver.delay_s = 200, 0.0
    with httpx.Client(base_url=sim.v2_url, trust_env=False, timeout=10.0, headers=HEADERS) as client:
        yield client


def book(api: httpx.Client, start: str | None = None, et: int = 1, **over: Any) -> Any:
    body = {
        "start": start or at(),
        "eventTypeId": et,
        "attendee": {"name": "Ada Lovelace", "email": "ada@example.com", "timeZone": "Europe/Berlin"},
        "metadata": {"appointment_id": "42"},
        **over,
    }
    r = api.post("/bookings", json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def test_created_body_headers_and_signature(api: httpx.Client, sim: SimulatorProcess, receiver: Receiver) -> None:
    b = book(api)
    [got] = receiver.wait(1)
    raw, h = got["raw"], got["headers"]
    assert got["method"] == "POST" and h["Content-Type"] == "application/json"
    assert h["X-Cal-Signature-256"] == hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert h["X-Cal-Webhook-Version"] == "2021-10-20"
    body = json.loads(raw)
    assert list(body) == ["triggerEvent", "createdAt", "payload"] and body["triggerEvent"] == "BOOKING_CREATED"
    assert body["createdAt"].endswith("Z") and b" " not in raw.split(b'"title"')[0]  # JSON.stringify: no spaces
    p = body["payload"]
    assert p["uid"] == b["uid"] and p["bookingId"] == b["id"] and p["eventTypeId"] == 1 and p["type"] == "consult"
    assert p["status"] == "ACCEPTED" and p["title"] == b["title"]
    assert p["startTime"] == at() and p["endTime"] == at(hour=9).replace("09:00", "09:30")
    assert p["metadata"] == {"videoCallUrl": b["meetingUrl"], "appointment_id": "42"}
    assert p["organizer"]["email"] == "host@example.com" and p["organizer"]["utcOffset"] == 0
    assert p["attendees"][0]["email"] == "ada@example.com" and p["attendees"][0]["utcOffset"] in (60, 120)
    assert p["responses"]["email"] == {"label": "email_address", "value": "ada@example.com", "isHidden": False}
    assert "rescheduleUid" not in p and "cancelledBy" not in p
    [d] = sim.webhook_deliveries(triggerEvent="BOOKING_CREATED")
    assert d["status"] == 200 and d["ok"] and d["body"].encode() == raw
    assert sim.stats()["webhooks"]["bySubscription"]["main"] == {"sent": 1, "200": 1}


def test_reschedule_and_cancel_bodies(api: httpx.Client, sim: SimulatorProcess, receiver: Receiver) -> None:
    old = book(api)
    r = api.post(f"/bookings/{old['uid']}/reschedule", json={"start": at(4), "rescheduledBy": "host@example.com"})
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert api.post(f"/bookings/{new['uid']}/cancel", json={"cancellationReason": "ill"}).status_code == 200
    receiver.wait(3)
    created, moved, cancelled = receiver.bodies()
    assert [created["triggerEvent"], moved["triggerEvent"], cancelled["triggerEvent"]] == [
        "BOOKING_CREATED",
        "BOOKING_RESCHEDULED",
        "BOOKING_CANCELLED",
    ]
    m = moved["payload"]
    assert m["uid"] == new["uid"] and m["rescheduleUid"] == old["uid"] and m["rescheduleId"] == old["id"]
    assert m["rescheduleStartTime"] == at() and m["startTime"] == at(4)
    assert m["rescheduledBy"] == "host@example.com" and m["metadata"]["appointment_id"] == "42"
    c = cancelled["payload"]
    assert c["uid"] == new["uid"] and c["status"] == "CANCELLED" and c["cancellationReason"] == "ill"
    assert c["cancelledBy"] == "host@example.com" and "metadata" not in c  # handleCancelBooking sends none
    assert c["startTime"] == at(4).replace("Z", "+00:00")


def test_outside_changes_and_recurring_fire(api: httpx.Client, sim: SimulatorProcess, receiver: Receiver) -> None:
    b = book(api)
    moved = sim.reschedule_as(b["uid"], at(5), by="attendee")["booking"]
    sim.cancel_as(moved["uid"], by="host", reason="closed")
    series = book(api, at(6), et=2)
    assert len(series) == 3
    receiver.wait(6)
    bodies = receiver.bodies()
    triggers = [x["triggerEvent"] for x in bodies]
    assert triggers == ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED", *["BOOKING_CREATED"] * 3]
    assert bodies[1]["payload"]["rescheduledBy"] == "ada@example.com"
    assert bodies[2]["payload"]["cancelledBy"] == "host@example.com"
    assert [x["payload"]["uid"] for x in bodies[3:]] == [o["uid"] for o in series]


def test_no_secret_triggers_inactive_and_template(api: httpx.Client, sim: SimulatorProcess, receiver: Receiver) -> None:
    url = receiver.url
    sim.register_webhooks(
        [
            {"id": "open", "subscriberUrl": f"{url}/open", "triggers": ["BOOKING_CANCELLED"]},
            {"id": "off", "subscriberUrl": f"{url}/off", "triggers": ALL, "active": False},
            {
                "id": "tpl",
                "subscriberUrl": f"{url}/tpl",
                "triggers": ALL,
                "payloadTemplate": '{"t":"{{triggerEvent}}","u":"{{uid}}"}',
            },
        ]
    )
    b = book(api)
    assert api.post(f"/bookings/{b['uid']}/cancel", json={"cancellationReason": "x"}).status_code == 200
    [opened] = receiver.wait(1, "/open")
    assert opened["headers"]["X-Cal-Signature-256"] == "no-secret-provided"
    assert json.loads(opened["raw"])["triggerEvent"] == "BOOKING_CANCELLED"
    tpl = receiver.wait(2, "/tpl")
    assert json.loads(tpl[0]["raw"]) == {"t": "BOOKING_CREATED", "u": b["uid"]}
    receiver.wait(2)
    assert not [r for r in receiver.received if r["path"] == "/off"]


def test_api_answer_never_waits_for_a_slow_or_failing_subscriber(
    api: httpx.Client, sim: SimulatorProcess, receiver: Receiver
) -> None:
    receiver.delay_s = 5.0  # beyond the 2 s delivery timeout
    started = time.monotonic()
    book(api)
    assert time.monotonic() - started < 1.0
    [d] = sim.wait_for_deliveries(1, timeout_s=10)
    assert d["status"] is None and d["error"].startswith("timeout") and not d["ok"]
    assert sim.stats()["webhooks"]["bySubscription"]["main"] == {"failed": 1, "error": 1}
    receiver.delay_s, receiver.status = 0.0, 302  # redirects are not followed
    book(api, at(7))
    sim.wait_for_deliveries(2)
    assert sim.webhook_deliveries()[-1]["status"] == 302
    time.sleep(0.2)
    assert not [r for r in receiver.received if r["path"] == "/redirected"]


def test_duplicate_drop_and_reorder_faults(api: httpx.Client, sim: SimulatorProcess, receiver: Receiver) -> None:
    sim.set_config(webhook_duplicate_rate=1.0)
    book(api)
    first, second = receiver.wait(2)
    assert (
        first["raw"] == second["raw"]
        and first["headers"]["X-Cal-Signature-256"] == second["headers"]["X-Cal-Signature-256"]
    )
    sim.reset()
    sim.set_config(webhook_duplicate_rate=0.0, webhook_drop_rate=1.0)
    receiver.received.clear()
    book(api, at(8))
    [d] = sim.wait_for_deliveries(1, fault="drop")
    assert d["sent"] is False and d["status"] is None
    time.sleep(0.3)
    assert receiver.received == []
    sim.set_config(webhook_drop_rate=0.0, webhook_reorder_rate=0.5, seed=3)
    uids = [book(api, at(9, hour=h))["uid"] for h in range(8, 14)]
    receiver.wait(6)
    arrived = [x["payload"]["uid"] for x in receiver.bodies()]
    assert sorted(arrived) == sorted(uids) and arrived != uids  # all came, some after later ones
    assert sim.stats()["webhooks"]["faults"]["reorder"] >= 1


def test_webhook_config_validation(sim: SimulatorProcess) -> None:
    for bad in ({"subscriberUrl": "ftp://x", "triggers": ALL}, {"subscriberUrl": "http://x", "triggers": ["NOPE"]}):
        with pytest.raises(httpx.HTTPStatusError):
            sim.register_webhooks([bad])
    with pytest.raises(ValueError, match="add up"):
        SimulatorConfig(webhook_drop_rate=0.6, webhook_duplicate_rate=0.6)
    assert all("secret" not in w for w in sim.webhooks())


def test_delay_fault_and_command_line(api: httpx.Client, sim: SimulatorProcess, receiver: Receiver) -> None:
    sim.set_config(webhook_delay_ms=[300, 300])
    started = time.monotonic()
    book(api)
    assert time.monotonic() - started < 0.3  # the API answer does not wait for the delay
    receiver.wait(1)
    assert time.monotonic() - started >= 0.3
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--webhook", "http://127.0.0.1:9/h", "--webhook-reorder-rate", "0.2"]))
    assert config.webhooks[0].subscriber_url == "http://127.0.0.1:9/h" and config.webhooks[0].secret is None
    again = config_from_args(parser.parse_args(config_to_args(config)))
    assert again.webhook_reorder_rate == 0.2 and again.webhooks == ()  # subscribers travel over /_sim/webhooks
