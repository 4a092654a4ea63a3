"""A hostile Cal.com: one case per way an HTTP answer can hurt the worker (bodies too big, bombs, drips, hangs,
redirects, 2xx without a booking, bytes PostgreSQL refuses, huge headers, the API key reflected).

A case is chosen by the first path segment (``CALCOM_BASE_URL=http://127.0.0.1:PORT/gzip-bomb`` makes every
request of the worker ``/gzip-bomb/v2/…``), else by the mode (``POST /_hostile/mode {"case": "hang"}``; the
default is ``ok``, a well-formed booking). ``GET /_hostile/requests`` lists the requests seen (case, method,
path, whether an Authorization header came), ``POST /_hostile/reset`` forgets them. Big bodies are generated
while they are sent (the server never holds them): ``big-100m`` is 100 MiB with its length declared, the gzip
bomb 1 GiB of zeros in about 1 MB of gzip.

    python -m worker.devtools.hostile --port 8099      # or HostileProcess() in tests
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import select
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
from aiohttp import web

BANNER = "calsync-hostile listening on"
MiB = 1 << 20
CHUNK = bytes(64 * 1024)
FILLER = b"x" * (64 * 1024)
_ids = itertools.count(1)

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def booking(request: dict[str, Any], **over: Any) -> dict[str, Any]:
    """A booking as Cal.com would answer it (the request's start, event type and metadata)."""
    n = next(_ids)
    start = request.get("start") or "2030-01-01T10:00:00.000Z"
    try:  # Cal.com: start + (lengthInMinutes ?? the event type's 30 minutes)
        begins = dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        end = (begins + dt.timedelta(minutes=int(request.get("lengthInMinutes") or 30))).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
    except (TypeError, ValueError):
        end = start
    out = {
        "id": 900_000 + n,
        "uid": f"hostile{n:06d}",
        "title": "Hostile booking",
        "status": "accepted",
        "start": start,
        "end": end,
        "eventTypeId": request.get("eventTypeId") or 8001,
        "metadata": request.get("metadata") or {},
    }
    out.update(over)
    return {k: v for k, v in out.items() if v is not ...}


def success(data: Any, status: int = 201) -> web.Response:
    return web.json_response({"status": "success", "data": data}, status=status)


def error(status: int, message: str) -> web.Response:
    body = {"status": "error", "error": {"code": "BadRequestException", "message": message}}
    return web.json_response(body, status=status)


async def stream(
    request: web.Request,
    status: int,
    chunks: Any,
    *,
    length: int | None = None,
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> web.StreamResponse:
    """Send ``chunks`` (an iterable of bytes) as they are made; a client that hangs up ends it quietly."""
    response = web.StreamResponse(status=status, headers=headers or {"Content-Type": "application/json"})
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    with suppress(ConnectionError):
        for chunk in chunks:
            if request.transport is None or request.transport.is_closing():
                break
            await response.write(chunk)
            if delay_s:
                await asyncio.sleep(delay_s)
        await response.write_eof()
    return response


def big(total: int, head: bytes = b'{"message": "') -> Any:
    yield head
    sent = len(head)
    while sent < total:
        piece = FILLER[: total - sent]
        sent += len(piece)
        yield piece


_GZIP_SEGMENT: bytes | None = None


def gzip_bomb(total_mib: int) -> Any:
    """A gzip member of ``total_mib`` MiB of zeros, ~1 KB per MiB: one full-flushed deflate segment of a MiB of
    zeros repeated (full flushes make the segments identical), then the trailer (CRC32 and size)."""
    global _GZIP_SEGMENT
    block = bytes(MiB)
    if _GZIP_SEGMENT is None:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        _GZIP_SEGMENT = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    segment = _GZIP_SEGMENT
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    for _ in range(total_mib):
        yield segment
    crc = 0
    for _ in range(total_mib):  # only reached by a client that inflated all of it
        crc = zlib.crc32(block, crc)
    yield b"\x03\x00" + struct.pack("<II", crc, (total_mib * MiB) & 0xFFFFFFFF)


def well_formed_configuration(request: web.Request) -> web.Response | None:
    """GET /v2/me and GET /v2/event-types/{id} (under any case prefix) answered as Cal.com does, not recorded: the
    cases are about the answers to booking calls. The event type is the test salon's 30-minute one."""
    if request.method != "GET":
        return None
    path = request.path.rstrip("/")
    if path.endswith("/v2/me"):
        return web.json_response({"status": "success", "data": {"id": 1, "email": "owner@salon.example"}})
    head, _, last = path.rpartition("/")
    if head.endswith("/v2/event-types") and last.isdigit():
        data = {"id": int(last), "lengthInMinutes": 30, "lengthInMinutesOptions": [], "title": "Termin"}
        return web.json_response({"status": "success", "data": data})
    return None


def is_list(request: web.Request) -> bool:
    return request.method == "GET" and request.path.rstrip("/").endswith("/v2/bookings")


# -- the cases ------------------------------------------------------------------------------------------------
async def ok(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if is_list(request):
        return web.json_response({"status": "success", "data": [], "pagination": {"hasNextPage": False}})
    return success(booking(body), 200 if request.path.endswith("/cancel") else 201)


async def bad_json(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.Response(status=201, text='{"status": "success", "data": {"uid": "abc', content_type="application/json")


async def html_502(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    return web.Response(status=502, text=page, content_type="text/html")


def big_case(total: int, *, status: int = 500, declared: bool = True) -> Handler:
    async def handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await stream(request, status, big(total), length=total if declared else None)

    return handler


async def gzip_bomb_case(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return await stream(request, 201, gzip_bomb(1024), headers=headers)


async def gzip_corrupt(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    return web.Response(status=201, body=b"\x1f\x8b\x08\x00garbage, not deflate at all", headers=headers)


async def brotli(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    headers = {"Content-Encoding": "br", "Content-Type": "application/json"}
    return web.Response(status=201, body=b"\x8b\x03\x80{}\x03", headers=headers)


async def slow_drip(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    payload = json.dumps({"status": "success", "data": booking(body)}).encode()
    return await stream(request, 201, (payload[i : i + 1] for i in range(len(payload))), length=len(payload), delay_s=1)


async def hang(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    await asyncio.sleep(3600)
    return web.Response(status=504)


def redirect(status: int) -> Handler:
    async def handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        # to this server's well-formed case: a client that followed would see a real booking (and send its key)
        target = f"http://{request.host}/ok/v2/bookings"
        return web.Response(status=status, headers={"Location": target})

    return handler


def envelope(payload: Any, status: int = 201) -> Handler:
    """A 2xx with this JSON body (``payload`` may be a function of the request body)."""

    async def handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(payload(body) if callable(payload) else payload, status=status)

    return handler


def raw(status: int, data: bytes, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(status=status, body=data, headers={"Content-Type": content_type})

    return handler


async def many_headers(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    response = success(booking(body))
    for i in range(2000):
        response.headers[f"X-Filler-{i}"] = "y" * 16
    return response


async def huge_header(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    response = success(booking(body))
    response.headers["X-Huge"] = "z" * (1 * MiB)
    return response


def _auth(request: web.Request) -> str:
    return request.headers.get("Authorization", "")


async def reflect(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A 400 that echoes the request's headers in its body, its message and the headers the worker keeps."""
    echoed = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    key = _auth(request).removeprefix("Bearer ")
    response = error(400, f"invalid request, you sent {echoed}")
    response.headers.update({"X-Request-Id": _auth(request), "X-Echo-Authorization": _auth(request)})
    response.headers["Content-Type"] = f"application/json; key={key}"
    return response


async def reflect_ok(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A well-formed booking whose title and request id carry the key."""
    if is_list(request):
        return await ok(request, body)
    response = success(booking(body, title=f"booked with {_auth(request)}"))
    response.headers["X-Request-Id"] = _auth(request).removeprefix("Bearer ")
    return response


async def ratelimit_garbage(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    headers = {
        "X-RateLimit-Limit-Default": "nan",
        "X-RateLimit-Remaining-Default": "soon",
        "X-RateLimit-Reset-Default": "1e12",
    }
    response = error(429, "ThrottlerException: Too Many Requests")
    response.headers.update(headers)
    return response


NUL_RAW = b'{"status": "error", "error": {"message": "bad\x00field \x00\x00 here"}}'
NUL_JSON = b'{"status": "error", "error": {"message": "bad\\u0000field \\u0000 here"}}'
NON_UTF8 = b'{"status": "error", "error": {"message": "caf\xe9 \xff\xfe \xc3\x28 broken"}}'
SURROGATE = b'{"status": "error", "error": {"message": "lone \\ud800 surrogate"}}'
DEEP = b"[" * 100_000 + b"]" * 100_000

CASES: dict[str, Handler] = {
    "ok": ok,
    "bad-json": bad_json,
    "html-502": html_502,
    "big-10m": big_case(10 * MiB),
    "big-100m": big_case(100 * MiB),
    "big-chunked": big_case(100 * MiB, status=200, declared=False),
    "gzip-bomb": gzip_bomb_case,
    "gzip-corrupt": gzip_corrupt,
    "brotli": brotli,
    "slow-drip": slow_drip,
    "hang": hang,
    "redirect-302": redirect(302),
    "redirect-307": redirect(307),
    "no-data": envelope({"status": "success"}),
    "empty-data": envelope({"status": "success", "data": {}}),
    "array": envelope(lambda b: [booking(b)]),
    "data-array": envelope(lambda b: {"status": "success", "data": [booking(b)]}),
    "status-error-200": envelope({"status": "error", "error": {"message": "not booked"}}, 200),
    "no-uid": envelope(lambda b: {"status": "success", "data": booking(b, uid=...)}),
    "odd-types": envelope(lambda b: {"status": "success", "data": booking(b, uid=12345, id="678")}),
    "uid-nul": envelope(lambda b: {"status": "success", "data": booking(b, uid="abc\x00def")}),
    "bad-time": envelope(lambda b: {"status": "success", "data": booking(b, start="yesterday")}),
    "list-bad-item": envelope(lambda b: {"status": "success", "data": [booking(b), {"uid": "x", "id": True}]}, 200),
    "non-json-2xx": raw(200, b"OK", "text/plain"),
    "empty-2xx": raw(201, b""),
    "deep-json": raw(201, DEEP),
    "nul-raw": raw(400, NUL_RAW),
    "nul-json": raw(400, NUL_JSON),
    "non-utf8": raw(400, NON_UTF8),
    "surrogate": raw(400, SURROGATE),
    "many-headers": many_headers,
    "huge-header": huge_header,
    "reflect": reflect,
    "reflect-ok": reflect_ok,
    "ratelimit-garbage": ratelimit_garbage,
}


class Hostile:
    def __init__(self) -> None:
        self.mode = "ok"
        self.seen: list[dict[str, Any]] = []

    async def serve(self, request: web.Request) -> web.StreamResponse:
        if (configuration := well_formed_configuration(request)) is not None:
            return configuration  # the worker's start-up probe and event type reads: the booking routes are hostile
        first = request.path.lstrip("/").partition("/")[0]
        case = first if first in CASES else self.mode
        self.seen.append(
            {
                "case": case,
                "method": request.method,
                "path": request.path,
                "authorization": bool(request.headers.get("Authorization")),
                "at": time.time(),
            }
        )
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            body = {}
        return await CASES[case](request, body if isinstance(body, dict) else {})

    async def set_mode(self, request: web.Request) -> web.StreamResponse:
        case = (await request.json()).get("case")
        if case not in CASES:
            return web.json_response({"error": f"unknown case {case!r}", "cases": sorted(CASES)}, status=400)
        self.mode = case
        return web.json_response({"mode": case})

    async def requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": self.seen, "mode": self.mode})

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.seen.clear()
        self.mode = "ok"
        return web.json_response({"ok": True})


def create_app() -> web.Application:
    hostile = Hostile()
    app = web.Application(client_max_size=MiB)
    app.router.add_post("/_hostile/mode", hostile.set_mode)
    app.router.add_get("/_hostile/requests", hostile.requests)
    app.router.add_post("/_hostile/reset", hostile.reset)
    app.router.add_route("*", "/{tail:.*}", hostile.serve)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(create_app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    print(f"{BANNER} http://{host}:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class HostileProcess:
    """The hostile server as a child OS process (like ``SimulatorProcess``): ``url(case)`` is a base URL."""

    def __init__(self, port: int = 0, startup_timeout_s: float = 20.0) -> None:
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> HostileProcess:
        root = Path(__file__).resolve().parents[2]
        cmd = [sys.executable, "-m", "worker.devtools.hostile", "--port", str(self.port)]
        self._proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], self.startup_timeout_s)
        line = self._proc.stdout.readline() if ready else ""  # the banner, once bound
        if BANNER not in line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the hostile server did not start: {line!r}")
        self.base_url = line.split(BANNER, 1)[1].strip()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        stdout: IO[str] | None = proc.stdout
        if stdout is not None:
            stdout.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def url(self, case: str) -> str:
        if case not in CASES:
            raise KeyError(case)
        return f"{self.base_url}/{case}"

    def requests(self) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = httpx.get(f"{self.base_url}/_hostile/requests", timeout=10).json()["requests"]
        return seen

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_hostile/reset", timeout=10).raise_for_status()

    def set_mode(self, case: str) -> None:
        httpx.post(f"{self.base_url}/_hostile/mode", json={"case": case}, timeout=10).raise_for_status()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m worker.devtools.hostile", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
