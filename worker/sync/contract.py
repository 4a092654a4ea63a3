"""The typed contract between the worker and the database: what the worker reads, what it reports.

Each class here has one SQL twin, a composite type of the same fields (named in ``SQL_TYPE``), created by the
revision that introduced it and shown in ``sql/types/sync_contract.sql``; ``tests/test_contract.py`` fails when a
field exists on one side only or their types differ.

- Read: ``calsync.appointment_sync_state(ids)`` returns one ``calsync.appointment_sync_state`` per appointment;
  the worker fetches each as JSON (``to_jsonb``) and decodes it strictly into ``SyncState`` (an unknown or missing
  field is an error, not a ``None``).
- Report: the worker sends ``SyncResult`` rows (JSON) to ``calsync.finish_sync_events``, which reads them with
  ``jsonb_populate_recordset(NULL::calsync.sync_result, …)``. A result holds facts only (what Cal.com answered,
  which bookings exist now, the category of the outcome); the database derives every status from them: the
  event's (synced, retry, dead), the appointment's and each phase's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

import msgspec

# The slot of an appointment's own booking in calsync.synced_bookings (a phase's booking has slot = phase id).
APPOINTMENT_SLOT = 0


class _Row(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    SQL_TYPE: ClassVar[str]


# -- read: the state of an appointment, as the worker syncs it -----------------------------------------------
class Customer(_Row, frozen=True):
    SQL_TYPE: ClassVar[str] = "calsync.sync_customer"
    id: int
    name: str | None
    email: str | None
    phone: str | None
    email_is_placeholder: bool
    usable_email: bool  # calsync.is_usable_email: an e-mail Cal.com takes (since 0015 the same as email_accepted)
    usable_phone: bool  # calsync.is_usable_phone: not blank, not an anonymous_… stand-in (not libphonenumber's check)
    # revision 0015 (appended, as ALTER TYPE … ADD ATTRIBUTE appends):
    email_accepted: bool  # Cal.com's e-mail rule (calsync.is_usable_email); when false, `email` is never sent
    placeholder_email: str | None  # calsync.placeholder_email(id), sent in place of a refused e-mail (always set)


class Service(_Row, frozen=True):
    SQL_TYPE: ClassVar[str] = "calsync.sync_service"
    id: int
    name: str | None
    event_type_id: int | None


class Phase(_Row, frozen=True):
    SQL_TYPE: ClassVar[str] = "calsync.sync_phase"
    id: int
    sequence_order: int | None
    segment_key: str | None
    segment_name: str | None
    staff_required: bool
    start_time: dt.datetime
    end_time: dt.datetime
    calcom_booking_uid: str | None
    calcom_booking_id: int | None
    calcom_sync_status: str | None


class EventTypeOfSegment(_Row, frozen=True):
    """A row of calcom_event_map for the appointment's service and staff."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_segment_event_type"
    segment_key: str
    event_type_id: int


class KnownBooking(_Row, frozen=True):
    """A booking the worker made or adopted (calsync.synced_bookings)."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_known_booking"
    slot: int
    uid: str
    booking_id: int | None
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    event_type_id: int | None


class SupersededBooking(_Row, frozen=True):
    """A booking of a phase the appointment no longer has (calsync.superseded_phases), still to cancel."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_superseded_booking"
    id: int
    phase_id: int
    uid: str


class SyncState(_Row, frozen=True):
    """Everything the worker needs to sync one appointment. For an appointment that was deleted (``deleted``)
    only ``id``, ``status`` ('cancelled') and ``synced`` (what Cal.com still has for it) are filled."""

    SQL_TYPE: ClassVar[str] = "calsync.appointment_sync_state"
    id: int
    deleted: bool
    status: str | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    is_composite: bool
    booking_timezone: str | None
    staff_id: uuid.UUID | None
    calcom_v2_booking_uid: str | None
    calcom_sync_status: str | None
    event_times: list[dt.datetime]  # the start times in its undelivered events (an earlier attempt may have booked)
    host_conflict: int | None  # another appointment the host is booked by (an open integrity issue)
    customer: Customer | None
    service: Service | None
    phases: list[Phase]
    event_map: list[EventTypeOfSegment]
    synced: list[KnownBooking]
    superseded: list[SupersededBooking]
    composite_problem: str | None
    composite_flagged: bool
    # revision 0015 (appended): the salon's settings, calsync.company_settings; None = the worker's default
    phone_region: str | None  # ISO 3166 alpha-2 for national phone formats (default CALSYNC_PHONE_REGION, DE)
    language: str | None  # the attendee's language at Cal.com (default contacts.DEFAULT_LANGUAGE, de)

    def event_type_of_segment(self, key: str | None) -> int | None:
        return next((m.event_type_id for m in self.event_map if m.segment_key == key), None)


# -- report: what one attempt found -----------------------------------------------------------------------
class BookingFact(_Row, frozen=True):
    """A booking Cal.com has now (or, ``cancelled``, no longer has) for the appointment (phase_id NULL) or a phase."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_booking_fact"
    phase_id: int | None
    uid: str | None
    booking_id: int | None = None
    start_at: dt.datetime | None = None
    end_at: dt.datetime | None = None
    event_type_id: int | None = None
    cancelled: bool = False


class ExchangeRecord(_Row, frozen=True):
    """One HTTP exchange with Cal.com, as archived in calsync.sync_attempts (never with a secret in it)."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_exchange"
    phase_id: int | None
    action: str
    request_method: str
    request_path: str
    request_body: dict[str, Any] | None
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    response_size: int | None  # bytes Cal.com sent (or declared), before any cap
    response_truncated: bool
    duration_ms: float
    category: str
    error: str | None
    at: dt.datetime


class FailureDetail(_Row, frozen=True):
    """The structure of a failure (stored in appointments.sync_error_detail, with the category and attempt)."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_failure_detail"
    message: str
    field: str | None
    http_status: int | None
    action: str | None
    phase_id: int | None
    request_id: str | None


class PhoneFinding(_Row, frozen=True):
    """What the worker found of a customer's phone (libphonenumber, which SQL cannot run): ``reason`` set when Cal.com
    would refuse the stored ``value`` (a data-quality finding), None when it is fine again (the finding resolved)."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_phone_finding"
    customer_id: int
    value: str | None
    reason: str | None


class SyncResult(_Row, frozen=True):
    """The outcome of one attempt at one sync event: facts, from which calsync.finish_sync_events decides."""

    SQL_TYPE: ClassVar[str] = "calsync.sync_result"
    event_id: uuid.UUID
    appointment_id: int
    category: str  # a remediation.categories row; 'OK' when everything the plan needed was done
    skipped: bool  # nothing to do and nothing to record (an appointment kept as history)
    error: str | None
    detail: FailureDetail | None
    retry_after_s: float | None  # Cal.com's X-RateLimit-Reset when rate limited
    bookings: list[BookingFact]
    superseded: list[int]  # calsync.superseded_phases ids whose booking is now cancelled
    exchanges: list[ExchangeRecord]
    # revision 0017 (appended, as ALTER TYPE … ADD ATTRIBUTE appends):
    phone_findings: list[PhoneFinding] = []


CONTRACT: tuple[type[_Row], ...] = (
    Customer,
    Service,
    Phase,
    EventTypeOfSegment,
    KnownBooking,
    SupersededBooking,
    SyncState,
    BookingFact,
    ExchangeRecord,
    FailureDetail,
    PhoneFinding,
    SyncResult,
)

_state_decoder = msgspec.json.Decoder(SyncState)
_encoder = msgspec.json.Encoder()


def decode_state(document: str | bytes) -> SyncState:
    """One ``to_jsonb(calsync.appointment_sync_state)`` document, strictly."""
    return _state_decoder.decode(document)


def encode_results(results: list[SyncResult]) -> str:
    return _encoder.encode(results).decode()
