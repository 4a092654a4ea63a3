"""The receiver: `POST /webhooks/calcom` (and `/webhooks/calcom/{company_id}` with that company's secret),
`GET /healthz`.

Order of checks, cheapest first, nothing stored until the delivery is authentic and well-formed:
1. a declared or actual body over the cap: 413 (the body is read with a deadline, never past the cap);
2. the signature (X-Cal-Signature-256, worker/webhooks/signature.py): missing or wrong, or an unsigned delivery
   that is not allowed: 401;
3. not a Cal.com delivery (not JSON, not an object, no triggerEvent): 400;
4. one SQL call (calsync.receive_webhook) stores and applies it: 200 with its outcome, whatever the outcome (an
   unknown trigger, a duplicate, a parked or refused change are all kept and answered 200: Cal.com must not
   retry them). Only a database that is unavailable gets 503 (nothing was stored; Cal.com's retry is welcome).
A background task retries parked deliveries every CALSYNC_WEBHOOK_RETRY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from typing import Any

import msgspec
import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from worker import logs, text
from worker.db import libpq_url, query
from worker.sync.sdnotify import Notifier
from worker.webhooks import batch, contract, signature
from worker.webhooks.settings import WebhookSettings

MAX_STORED_HEADERS = 64
RETRY_PER_TICK = 100  # parked deliveries retried at most per CALSYNC_WEBHOOK_RETRY_S
# headers never stored: the signature (an HMAC of the secret) and anything that may carry a secret
_SECRET_HEADER = re.compile(r"(?i)signature|secret|authorization|cookie|token|api[-_]?key|password")
_json = msgspec.json.Encoder()
POOL_KEY = web.AppKey("pool", AsyncConnectionPool)
SETTINGS_KEY = web.AppKey("settings", WebhookSettings)
BATCHER_KEY = web.AppKey("batcher", batch.Batcher)


# a header's name as stored, None for a name never stored; the same few names come with every delivery
_NAMES: dict[str, str | None] = {}
_NAMES_CAP = 1024


def _stored_name(name: str) -> str | None:
    try:
        return _NAMES[name]
    except KeyError:
        stored = None if _SECRET_HEADER.search(name) else text.clean(name)[:200]
        if len(_NAMES) < _NAMES_CAP:
            _NAMES[name] = stored
        return stored


def stored_headers(headers: Any, secret: str | None) -> str:
    """The request's headers as kept: without secrets (by name, and the secret wherever a value holds it), clean
    for PostgreSQL, each value cut to text.HEADER_CAP characters, at most MAX_STORED_HEADERS."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        if len(kept) >= MAX_STORED_HEADERS:
            break
        if (stored := _stored_name(name)) is None:
            continue
        value = text.clean(value)
        if secret and secret in value:  # before the cut, so that no part of it is left
            value = value.replace(secret, text.REDACTED)
        kept[stored] = value[: text.HEADER_CAP]
    return _json.encode(kept).decode()


def _answer(code: int, **fields: Any) -> web.Response:
    return web.Response(status=code, body=_json.encode(fields), content_type="application/json")


async def receive(request: web.Request) -> web.StreamResponse:
    cfg = request.app[SETTINGS_KEY]
    company = request.match_info.get("company_id")
    company_id = int(company) if company is not None else None
    if request.content_length is not None and request.content_length > cfg.max_body_bytes:
        return _answer(413, error=f"body over {cfg.max_body_bytes} bytes")
    try:
        async with asyncio.timeout(cfg.read_timeout_s):  # cheaper than wait_for, which starts a task per read
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _answer(413, error=f"body over {cfg.max_body_bytes} bytes")
    except TimeoutError:
        return _answer(408, error="the body did not arrive in time")
    try:
        secret = cfg.secret_for(company_id)
    except Exception as e:  # a secret file that can't be used: refuse, say so in the log (never the secret)
        logs.log("webhook_secret_unusable", level="error", company_id=company_id, error=str(e))
        return _answer(401, error="no usable secret for this URL")
    verdict = signature.check(request.headers.get(signature.HEADER), body, secret, allow_unsigned=cfg.allow_unsigned)
    if not verdict.accepted:
        logs.log("webhook_refused", level="warning", company_id=company_id, reason=verdict.value, bytes=len(body))
        return _answer(401, error=f"signature {verdict.value}")
    try:
        event = contract.parse(body, company_id)
    except contract.MalformedDelivery as e:
        return _answer(400, error=str(e))
    params = {
        "event": contract.encode(event),
        "body": text.readable(body, [secret] if secret else []),
        "headers": stored_headers(request.headers, secret),
        "signature": verdict.value,
    }
    try:
        delivery_id, outcome, detail, appointment_id = await request.app[BATCHER_KEY].submit(params)
    except psycopg.Error as e:  # nothing was stored: Cal.com's retry (or the reconciliation) brings it again
        unavailable = batch.unavailable(e)
        logs.log("database_unavailable" if unavailable else "webhook_not_stored", level="error",
                 sqlstate=e.sqlstate, error=str(e).splitlines()[0] if str(e) else type(e).__name__)  # fmt: skip
        return _answer(503 if unavailable else 500, error="not stored, send it again")
    logs.log("webhook_received", trigger=event.trigger_event, uid=event.uid, delivery_id=delivery_id,
             outcome=outcome, appointment_id=appointment_id, company_id=company_id)  # fmt: skip
    return _answer(200, delivery_id=delivery_id, outcome=outcome, detail=detail)


async def health(request: web.Request) -> web.StreamResponse:
    try:
        async with request.app[POOL_KEY].connection(timeout=2) as conn:
            cur = await conn.execute(query("webhook_health"))
            row = await cur.fetchone()
    except Exception as e:
        return _answer(503, status="database unavailable", error=type(e).__name__)
    return _answer(200, status="ok", parked=row[0] if row else 0)


async def retry_parked(app: web.Application) -> None:
    """Every retry_s, the parked deliveries that are due, up to RETRY_PER_TICK, in transactions of retry_batch spread
    evenly over the tick. One transaction for all of them held their rows and the app's for the whole run, and the
    deliveries arriving meanwhile for those bookings waited (the bench's p99 at 1,000/s: 346 ms with it, 42 ms
    without); back-to-back small ones still made one burst of work every tick for the deliveries arriving then to
    queue behind."""
    cfg = app[SETTINGS_KEY]
    rounds = 0
    while True:
        if rounds == 0:
            await asyncio.sleep(cfg.retry_s)
        try:
            async with app[POOL_KEY].connection() as conn:
                cur = await conn.execute(query("webhook_health"))
                row = await cur.fetchone()
            parked = min(int(row[0]) if row else 0, RETRY_PER_TICK)
            settled, rounds = 0, -(-parked // cfg.retry_batch)
            for _ in range(rounds):
                await asyncio.sleep(cfg.retry_s / rounds)  # paced: one small transaction at a time over the tick
                async with app[POOL_KEY].connection() as conn:
                    cur = await conn.execute(query("webhook_retry_parked"), {"limit": cfg.retry_batch})
                    row = await cur.fetchone()
                settled += int(row[0]) if row and row[0] else 0
            if settled:
                logs.log("webhooks_retried", settled=settled, transactions=rounds)
        except psycopg.Error as e:
            rounds = 0
            logs.log("webhook_retry_failed", level="warning", error=str(e).splitlines()[0] if str(e) else "")


def make_app(cfg: WebhookSettings, pool: AsyncConnectionPool[Any]) -> web.Application:
    app = web.Application(client_max_size=cfg.max_body_bytes)
    app[SETTINGS_KEY] = cfg
    app[POOL_KEY] = pool
    # one connection left for the rest (health, the retry timer)
    app[BATCHER_KEY] = batch.Batcher(pool, lanes=max(1, cfg.pool_size - 1), max_batch=cfg.batch_max)
    app.router.add_post("/webhooks/calcom", receive)
    app.router.add_post(r"/webhooks/calcom/{company_id:\d{1,18}}", receive)
    app.router.add_get("/healthz", health)
    return app


async def serve(cfg: WebhookSettings) -> None:
    from worker.ops import head

    await asyncio.to_thread(head.require_head, cfg.database_url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        libpq_url(cfg.database_url), min_size=cfg.pool_size, max_size=cfg.pool_size, open=False,
        kwargs={"autocommit": True},
    )  # fmt: skip
    await pool.open(wait=True, timeout=30)
    app = make_app(cfg, pool)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = cfg.listen
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_port=cfg.reuse_port or None)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    notifier = Notifier()
    retry = asyncio.create_task(retry_parked(app))
    logs.log("webhooks_listening", host=host, port=bound, path="/webhooks/calcom")
    notifier.ready()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), notifier.watchdog_interval_s or 3600)
            notifier.watchdog()
    finally:
        notifier.stopping()
        retry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retry
        await runner.cleanup()
        await app[BATCHER_KEY].close()
        await pool.close()
        logs.log("webhooks_stopped")


def run(cfg: WebhookSettings) -> int:
    asyncio.run(serve(cfg))
    return 0
