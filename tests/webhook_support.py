"""Helpers for the webhook tests: Cal.com-shaped bodies, delivering them through calsync.receive_webhook (the
receiver's one SQL call), an appointment as the worker leaves it once synced, and `calsync webhooks` as a real
OS process."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import Db
from worker.db import query
from worker.resources import ROOT
from worker.webhooks import contract, signature
from worker.webhooks.app import stored_headers

SECRET = "whsec_calsync_test_0123456789"


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(trigger: str, uid: str | None, created_at: dt.datetime | None = None, **payload: Any) -> bytes:
    """A delivery as Cal.com's sendPayload builds it: compact JSON."""
    p: dict[str, Any] = {"uid": uid, **payload} if uid is not None else dict(payload)
    for key in ("startTime", "endTime"):
        if isinstance(p.get(key), dt.datetime):
            p[key] = iso(p[key])
    doc = {"triggerEvent": trigger, "createdAt": iso(created_at or dt.datetime.now(dt.UTC)), "payload": p}
    return json.dumps(doc, separators=(",", ":")).encode()


def reschedule(old: str, new: str, start: dt.datetime, minutes: int = 30, **extra: Any) -> bytes:
    return body("BOOKING_RESCHEDULED", new, rescheduleUid=old, startTime=start,
                endTime=start + dt.timedelta(minutes=minutes), status="ACCEPTED", **extra)  # fmt: skip


def cancel(uid: str, reason: str = "Ich bin krank", by: str = "hans.schuster@mail.example") -> bytes:
    return body("BOOKING_CANCELLED", uid, status="CANCELLED", cancellationReason=reason, cancelledBy=by)


def deliver(conn: psycopg.Connection[Any], raw: bytes, company_id: int | None = None) -> dict[str, Any]:
    """What the receiver does after the signature check: parse, then the one SQL call."""
    event = contract.parse(raw, company_id)
    row = conn.execute(
        query("webhook_receive"),  # type: ignore[arg-type]
        {"event": contract.encode(event), "body": raw.decode(), "headers": stored_headers({}, None),
         "signature": "valid"},
    ).fetchone()  # fmt: skip
    conn.commit()
    assert row is not None
    return dict(zip(("delivery_id", "outcome", "detail", "appointment_id"), row, strict=True))


def synced(conn: psycopg.Connection[Any], appointment_id: int, uid: str, booking_id: int | None = None) -> None:
    """The appointment as the worker leaves it after booking `uid`: the uid recorded, its events delivered."""
    booking_id = booking_id if booking_id is not None else zlib.crc32(uid.encode())
    conn.execute("SET calsync.writer = 'worker'")
    conn.execute(
        "UPDATE appointments SET calcom_v2_booking_uid = %s, calcom_v2_booking_id = %s, calcom_sync_status = 'synced'"
        " WHERE id = %s",
        [uid, str(booking_id), appointment_id],
    )
    conn.execute(
        "INSERT INTO calsync.synced_bookings (appointment_id, slot, uid, booking_id, start_at, end_at, synced_at) "
        "SELECT id, 0, %s, %s, starts_at, ends_at, now() FROM appointments WHERE id = %s",
        [uid, booking_id, appointment_id],
    )
    conn.execute("DELETE FROM calsync.outbox WHERE aggregateid = %s", [str(appointment_id)])
    conn.execute("RESET calsync.writer")
    conn.commit()


def outbox(conn: psycopg.Connection[Any], appointment_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT type FROM calsync.outbox WHERE aggregateid = %s ORDER BY seq", [str(appointment_id)]
    ).fetchall()
    return [str(r[0]) for r in rows]


class ReceiverProcess:
    """`calsync webhooks` as a real process on a free port; its JSON-lines log in a file."""

    def __init__(self, db: Db, **env: str) -> None:
        self.env = {
            **os.environ,
            "CALSYNC_DATABASE_URL": db.url,
            "CALCOM_WEBHOOK_SECRET": SECRET,
            "CALSYNC_WEBHOOK_LISTEN": "127.0.0.1:0",
            "CALSYNC_WEBHOOK_RETRY_S": "0.2",
            **env,
        }
        self.env = {k: v for k, v in self.env.items() if v != ""}
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        fd, self.log_path = tempfile.mkstemp(prefix="calsync-webhooks-", suffix=".log")
        os.close(fd)

    def __enter__(self) -> ReceiverProcess:
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "webhooks"], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.search(r'"event": "webhooks_listening".*"port": (\d+)', self.output())
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                return self
            assert self.proc.poll() is None, f"the receiver exited: {self.output()}"
            time.sleep(0.05)
        raise TimeoutError(f"the receiver did not start: {self.output()}")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def post(self, raw: bytes, secret: str | None = SECRET, path: str = "/webhooks/calcom",
             sig: str | None = None) -> httpx.Response:  # fmt: skip
        headers = {"Content-Type": "application/json", "X-Cal-Webhook-Version": "2021-10-20"}
        if sig is not None:
            headers[signature.HEADER] = sig
        elif secret is not None:
            headers[signature.HEADER] = signature.sign(secret, raw)
        return httpx.post(self.url + path, content=raw, headers=headers, timeout=10, trust_env=False)
