"""What the receiver reads out of a Cal.com delivery, typed: ``WebhookEvent``, the twin of the composite type
``calsync.webhook_event`` (sql/types/webhook_contract.sql; tests/test_contract.py compares them). The receiver
sends it as JSON to ``calsync.receive_webhook``, which reads it with ``jsonb_populate_record``.

A delivery is ``{"triggerEvent", "createdAt", "payload"}`` (Cal.com's sendPayload.ts). From the payload: ``uid``
(on a reschedule the NEW booking), ``rescheduleUid`` (the booking it moved), ``bookingId``, ``eventTypeId``,
``startTime``/``endTime``, ``status``, ``cancellationReason``, ``cancelledBy``, ``rescheduledBy``, ``title`` and our
own ``metadata`` (``calsync_appointment_id``, ``calsync_phase_id``; a cancel's payload carries none). Every value is
checked for its type and bound: texts cleaned (no NUL, no lone surrogate) and cut, integers within bigint, times
with a zone; anything else is None, never an error, because the delivery is stored whatever it holds.

The same event: a booking uid is created once, rescheduled to once and cancelled once, so ``trigger:uid`` names a
booking trigger's event, whatever the delivery's ``createdAt`` (a sender that retries may build the body again).
Other deliveries are the same event when their bodies are the same bytes: ``sha256:<hex>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, ClassVar

import msgspec

from worker import text
from worker.sync.appointment import META_APPOINTMENT, META_PHASE  # the metadata the worker books with
from worker.sync.contract import _Row

TEXT_CAP = 1000  # characters kept of one text field
UID_CAP = 255
BIGINT = 2**63


class WebhookEvent(_Row, frozen=True):
    SQL_TYPE: ClassVar[str] = "calsync.webhook_event"
    company_id: int | None  # the company of the URL (/webhooks/calcom/{company_id}); None on the shared URL
    trigger_event: str
    event_key: str
    created_at: dt.datetime | None
    uid: str | None
    reschedule_uid: str | None
    booking_id: int | None
    event_type_id: int | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    status: str | None
    appointment_id: int | None
    phase_id: int | None
    cancellation_reason: str | None
    cancelled_by: str | None
    rescheduled_by: str | None
    title: str | None


CONTRACT: tuple[type[_Row], ...] = (WebhookEvent,)


class MalformedDelivery(ValueError):
    """The body is not a Cal.com delivery (not JSON, not an object, no trigger): 400, nothing stored."""


_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def _text(value: Any, cap: int = TEXT_CAP) -> str | None:
    if not isinstance(value, str):
        return None
    return text.clean(value)[:cap]


def _int(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -BIGINT <= value < BIGINT:
        return None
    return value


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def event_key(trigger: str, uid: str | None, body: bytes) -> str:
    if uid is not None and trigger.startswith("BOOKING_"):
        return f"{trigger}:{uid}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse(body: bytes, company_id: int | None = None) -> WebhookEvent:
    """The event in ``body``; MalformedDelivery when it is no Cal.com delivery at all."""
    try:
        doc = _decoder.decode(body)
    except msgspec.DecodeError as e:
        raise MalformedDelivery(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise MalformedDelivery("the body is not a JSON object")
    trigger = _text(doc.get("triggerEvent"), 100)
    if not trigger:
        raise MalformedDelivery("the body has no triggerEvent")
    payload = doc.get("payload")
    p: dict[str, Any] = payload if isinstance(payload, dict) else {}
    meta = p.get("metadata")
    m: dict[str, Any] = meta if isinstance(meta, dict) else {}
    uid = _text(p.get("uid"), UID_CAP) or None
    return WebhookEvent(
        company_id=company_id,
        trigger_event=trigger,
        event_key=event_key(trigger, uid, body),
        created_at=_time(doc.get("createdAt")),
        uid=uid,
        reschedule_uid=_text(p.get("rescheduleUid"), UID_CAP) or None,
        booking_id=_int(p.get("bookingId")),
        event_type_id=_int(p.get("eventTypeId")),
        start_time=_time(p.get("startTime")),
        end_time=_time(p.get("endTime")),
        status=_text(p.get("status"), 100),
        appointment_id=_int(m.get(META_APPOINTMENT)),
        phase_id=_int(m.get(META_PHASE)),
        cancellation_reason=_text(p.get("cancellationReason")),
        cancelled_by=_text(p.get("cancelledBy"), 320),
        rescheduled_by=_text(p.get("rescheduledBy"), 320),
        title=_text(p.get("title")),
    )


def encode(event: WebhookEvent) -> str:
    return _encoder.encode(event).decode()
