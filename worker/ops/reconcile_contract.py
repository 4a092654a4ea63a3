"""The typed contract of ``calsync reconcile`` with the database (twins of ``sql/types/reconcile_contract.sql``).

- Sent: what Cal.com holds, one ``CalcomBooking`` per booking listed or read (facts only: its status, times, the
  raw values of our metadata keys, the successor Cal.com names), to ``remediation.reconcile_bookings``, which reads
  them with ``jsonb_populate_recordset(NULL::calsync.calcom_booking, …)`` and decides what they mean.
- Returned: one ``ReconcileFinding`` per finding (``to_jsonb`` of ``calsync.reconcile_finding``), decoded strictly.
``tests/test_contract.py`` fails when a field exists on one side only or the types differ.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import msgspec

from worker.sync.contract import _Row


class CalcomBooking(_Row, frozen=True):
    """One booking as Cal.com holds it; ``found`` False: a uid we asked for that Cal.com does not know (404)."""

    SQL_TYPE: ClassVar[str] = "calsync.calcom_booking"
    uid: str
    booking_id: int | None
    event_type_id: int | None
    status: str | None
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    metadata_appointment: str | None  # the raw value of calsync_appointment_id, if the booking has it
    metadata_phase: str | None  # of calsync_phase_id
    rescheduled_to_uid: str | None
    rescheduled_from_uid: str | None
    cancellation_reason: str | None  # cut to 200 characters
    found: bool


class ReconcileFinding(_Row, frozen=True):
    """One finding (calsync.reconcile_findings; ``id`` None in a dry run when it is not open already)."""

    SQL_TYPE: ClassVar[str] = "calsync.reconcile_finding"
    id: int | None
    kind: str  # orphan_at_calcom, orphan_here, drift
    uid: str
    booking_id: int | None
    appointment_id: int | None
    slot: int | None
    repair: str  # cancel_at_calcom, requeue, apply_reschedule, adopt_successor, person
    detail: str
    successor_uid: str | None
    successor_booking_id: int | None
    calcom_start: dt.datetime | None
    calcom_end: dt.datetime | None
    our_start: dt.datetime | None
    our_end: dt.datetime | None
    event_type_id: int | None
    is_new: bool | None


CONTRACT: tuple[type[_Row], ...] = (CalcomBooking, ReconcileFinding)

_finding = msgspec.json.Decoder(ReconcileFinding)
_encoder = msgspec.json.Encoder()


def decode_finding(document: str | bytes) -> ReconcileFinding:
    return _finding.decode(document)


def encode_bookings(bookings: list[CalcomBooking]) -> str:
    return _encoder.encode(bookings).decode()
