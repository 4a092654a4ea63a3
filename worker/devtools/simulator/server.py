"""Running the simulator: `run(config)` blocks serving it; `SimulatorProcess` runs it as a child OS process.

`SimulatorProcess` starts `sys.executable -m worker.devtools.simulator --port 0 …`, reads the URL from the banner
line the child prints once bound, waits until the admin API answers, registers the config's event types, and on exit
terminates the child (SIGTERM, then SIGKILL after 5 s). API keys reach the child through the environment.

    event_types = [{"id": 1, "lengthInMinutes": 30, "hostUserId": 7}]
    with SimulatorProcess(SimulatorConfig(rate_limit=1000), event_types=event_types) as sim:
        httpx.post(f"{sim.v2_url}/bookings", ...)
        sim.bookings(metadata_key="appointment_id", metadata_value="42")
        sim.reschedule_as(uid, "2030-01-07T10:00:00Z", by="attendee")  # an outside change
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
from aiohttp import web

from worker.devtools.simulator.app import create_app
from worker.devtools.simulator.config import API_KEYS_ENV, SimulatorConfig, config_to_args
from worker.devtools.simulator.model import EventType
from worker.devtools.simulator.webhooks import Subscription

BANNER = "calsync-simulator listening on"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _display_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def serve(config: SimulatorConfig) -> None:
    """Serve until SIGINT/SIGTERM; prints the banner line (with the bound port) to stdout once listening."""
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=2048, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    print(f"{BANNER} http://{_display_host(config.host)}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(config: SimulatorConfig) -> None:
    """Blocking: serve the simulator until interrupted."""
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(config))


class SimulatorProcess:
    """The simulator in a separate OS process, for tests, benchmarks and the demo."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        port: int = 0,
        startup_timeout_s: float = 20.0,
        stderr: int | IO[Any] | None = None,
        **overrides: Any,
    ) -> None:
        config = config or SimulatorConfig()
        if "webhooks" in overrides:
            overrides["webhooks"] = tuple(
                w if isinstance(w, Subscription) else Subscription.from_json(dict(w), f"cfg-{i}")
                for i, w in enumerate(overrides["webhooks"], 1)
            )
        if "event_types" in overrides:
            overrides["event_types"] = tuple(
                et if isinstance(et, EventType) else EventType.from_json(dict(et)) for et in overrides["event_types"]
            )
        self.config = dataclasses.replace(config, port=port, **overrides)
        self.startup_timeout_s = startup_timeout_s
        self._stderr = stderr
        self._proc: subprocess.Popen[str] | None = None
        self._client: httpx.Client | None = None
        self.base_url = ""

    @property
    def v2_url(self) -> str:
        return f"{self.base_url}/v2"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> SimulatorProcess:
        if self._proc is not None:
            raise RuntimeError("simulator already started")
        env = dict(os.environ)
        env[API_KEYS_ENV] = ",".join(self.config.api_keys)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "worker.devtools.simulator", *config_to_args(self.config)]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=self._stderr, env=env, text=True
        )
        try:
            self.base_url = self._read_banner(time.monotonic() + self.startup_timeout_s)
            self._client = httpx.Client(base_url=self.base_url, timeout=10.0, trust_env=False)
            self._wait_ready(time.monotonic() + self.startup_timeout_s)
            if self.config.event_types:
                self.register_event_types(self.config.event_types)
            if self.config.webhooks:
                self.register_webhooks([w.to_input() for w in self.config.webhooks])
        except BaseException:
            self.stop()
            raise
        return self

    def _read_banner(self, deadline: float) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the simulator did not report its address in time")
            ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.2))
            if ready:
                line = proc.stdout.readline()
                if m := re.search(rf"{BANNER} (http://\S+)", line):
                    threading.Thread(target=self._drain, args=(proc.stdout,), daemon=True).start()
                    return m.group(1)
                if not line and proc.poll() is not None:
                    raise RuntimeError(f"the simulator exited with status {proc.returncode} before listening")
            elif proc.poll() is not None:
                raise RuntimeError(f"the simulator exited with status {proc.returncode} before listening")

    @staticmethod
    def _drain(stream: IO[str]) -> None:
        with suppress(ValueError, OSError):
            for _ in stream:
                pass

    def _wait_ready(self, deadline: float) -> None:
        while True:
            try:
                self.stats()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    # -- admin API ------------------------------------------------------------------------------
    def admin(self, method: str, path: str, json: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """Call an admin endpoint (`/_sim/...`) and return its JSON; raises httpx.HTTPStatusError on 4xx/5xx."""
        if self._client is None:
            raise RuntimeError("simulator not running")
        response = self._client.request(method, path, json=json, params=params)
        response.raise_for_status()
        return response.json()

    def register_event_types(self, event_types: Iterable[EventType | Mapping[str, Any]]) -> list[dict[str, Any]]:
        payload = [et.to_json() if isinstance(et, EventType) else dict(et) for et in event_types]
        result: list[dict[str, Any]] = self.admin("POST", "/_sim/event-types", json=payload)["eventTypes"]
        return result

    def bookings(
        self, metadata_key: str | None = None, metadata_value: str | None = None, **filters: str
    ) -> list[dict[str, Any]]:
        params = dict(filters)
        if metadata_key is not None:
            params["metadataKey"] = metadata_key
        if metadata_value is not None:
            params["metadataValue"] = metadata_value
        result: list[dict[str, Any]] = self.admin("GET", "/_sim/bookings", params=params)["bookings"]
        return result

    def register_users(self, users: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Users and their API keys (`{"id", "apiKeys": [...], "teams": {"<id>": "MEMBER"|"ADMIN"|"OWNER"}, ...}`)."""
        result: list[dict[str, Any]] = self.admin("POST", "/_sim/users", json=[dict(u) for u in users])["users"]
        return result

    def reschedule_as(
        self,
        uid: str,
        start: str,
        by: str = "attendee",
        reason: str | None = None,
        length_in_minutes: int | None = None,
    ) -> dict[str, Any]:
        """The attendee or the host moves booking `uid` in Cal.com's pages: `{"booking": new, "previous": old}`."""
        body: dict[str, Any] = {"start": start, "by": by}
        if reason is not None:
            body["reason"] = reason
        if length_in_minutes is not None:
            body["lengthInMinutes"] = length_in_minutes
        result: dict[str, Any] = self.admin("POST", f"/_sim/bookings/{uid}/reschedule", json=body)
        return result

    def cancel_as(self, uid: str, by: str = "attendee", reason: str | None = None) -> dict[str, Any]:
        """The attendee or the host cancels booking `uid` in Cal.com's pages: `{"booking": the cancelled one}`."""
        body: dict[str, Any] = {"by": by} if reason is None else {"by": by, "reason": reason}
        result: dict[str, Any] = self.admin("POST", f"/_sim/bookings/{uid}/cancel", json=body)
        return result

    def register_webhooks(self, webhooks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Subscribers (`{"subscriberUrl", "triggers": [...], "secret"?, "active"?, "payloadTemplate"?, "id"?}`)."""
        body = [dict(w) for w in webhooks]
        result: list[dict[str, Any]] = self.admin("POST", "/_sim/webhooks", json=body)["webhooks"]
        return result

    def webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", "/_sim/webhooks")["webhooks"]
        return result

    def webhook_deliveries(self, **filters: str) -> list[dict[str, Any]]:
        """What the simulator sent (or dropped): body text, headers, status, fault; filters as the query takes
        them (subscriptionId, triggerEvent, bookingUid, fault, status)."""
        result: list[dict[str, Any]] = self.admin("GET", "/_sim/webhooks/deliveries", params=filters)["deliveries"]
        return result

    def wait_for_deliveries(self, count: int, timeout_s: float = 10.0, **filters: str) -> list[dict[str, Any]]:
        """Poll until at least `count` deliveries match; TimeoutError with what there is otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.webhook_deliveries(**filters)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} webhook deliveries after {timeout_s} s: {found}")
            time.sleep(0.02)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/_sim/stats")
        return result

    def reset(self, event_types: bool = False) -> None:
        """Bookings, counters and limits start over; with `event_types` the event types and users too."""
        self.admin("POST", "/_sim/reset", json={"eventTypes": event_types})

    def set_config(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/_sim/config", json=changes)
        return result

    def script_fault(self, op: str, fault: str) -> int:
        """The next request of operation `op` (create, get, list, cancel, reschedule, ...) gets `fault` (fail_5xx,
        timeout, ...), once; returns how many are scripted for `op` now."""
        result: dict[str, Any] = self.admin("POST", "/_sim/faults", json={"op": op, "fault": fault})
        return int(result["scripted"])
