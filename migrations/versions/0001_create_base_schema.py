"""Create the base booking schema as the app has it today.

Revision ID: 0001
Revises: (none)

This is "the database as it is today": the salon app's tables (see shared/domain.md), keeping only
the columns that matter to booking and Cal.com sync, with the same names. Its weaknesses are kept
on purpose, because the later revisions fix them and must be tested against them:

- ``appointments.sync_error_message`` is ``varchar(255)``: Cal.com's answers get cut;
- nothing prevents two live appointments of one customer, start and service;
- ``appointments.service_id`` is nullable, status and ``calcom_sync_status`` are free strings;
- ``appointment_phases`` has no unique (appointment_id, sequence_order), so phases can be doubled;
- nothing prevents a host from being booked twice, or a composite appointment without phases.

Existing databases adopt calsync with ``calsync adopt`` (checks that these tables and columns exist
with compatible types, then runs ``alembic stamp 0001``); see README "Adopting an existing database".
``EXPECTED_COLUMNS`` below is the contract that check uses. This file is frozen: never edit it.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# table -> {column: PostgreSQL type family accepted by `calsync adopt`}.
# Families: int (smallint/integer/bigint), text (text/varchar/char), uuid, bool, timestamptz, jsonb.
EXPECTED_COLUMNS: dict[str, dict[str, str]] = {
    "companies": {"id": "int", "name": "text", "created_at": "timestamptz", "updated_at": "timestamptz"},
    "branches": {
        "id": "uuid",
        "company_id": "int",
        "name": "text",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    "customers": {
        "id": "int",
        "company_id": "int",
        "name": "text",
        "email": "text",
        "phone": "text",
        "source": "text",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
        "deleted_at": "timestamptz",
    },
    "staff": {
        "id": "uuid",
        "company_id": "int",
        "branch_id": "uuid",
        "name": "text",
        "email": "text",
        "calcom_user_id": "int",
        "is_active": "bool",
    },
    "services": {
        "id": "int",
        "company_id": "int",
        "name": "text",
        "duration_minutes": "int",
        "composite": "bool",
        "segments": "jsonb",
        "calcom_event_type_id": "int",
    },
    "calcom_event_map": {
        "service_id": "int",
        "segment_key": "text",
        "staff_id": "uuid",
        "event_type_id": "int",
        "child_event_type_id": "int",
    },
    "appointments": {
        "id": "int",
        "company_id": "int",
        "branch_id": "uuid",
        "customer_id": "int",
        "service_id": "int",
        "staff_id": "uuid",
        "starts_at": "timestamptz",
        "ends_at": "timestamptz",
        "status": "text",
        "booking_timezone": "text",
        "source": "text",
        "sync_origin": "text",
        "calcom_booking_id": "int",
        "calcom_v2_booking_id": "text",
        "calcom_v2_booking_uid": "text",
        "calcom_sync_status": "text",
        "sync_error_message": "text",
        "sync_error_code": "text",
        "sync_attempt_count": "int",
        "last_sync_attempt_at": "timestamptz",
        "requires_manual_review": "bool",
        "manual_review_flagged_at": "timestamptz",
        "idempotency_key": "text",
        "version": "int",
        "is_composite": "bool",
        "metadata": "jsonb",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    },
    "appointment_phases": {
        "id": "int",
        "appointment_id": "int",
        "phase_type": "text",
        "segment_name": "text",
        "segment_key": "text",
        "sequence_order": "int",
        "start_offset_minutes": "int",
        "duration_minutes": "int",
        "staff_required": "bool",
        "start_time": "timestamptz",
        "end_time": "timestamptz",
        "calcom_booking_id": "int",
        "calcom_booking_uid": "text",
        "calcom_sync_status": "text",
        "sync_error_message": "text",
    },
}

UPGRADE_SQL = """
CREATE TABLE companies (
    id          bigserial PRIMARY KEY,
    name        varchar(255) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE branches (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id  bigint NOT NULL REFERENCES companies (id),
    name        varchar(255) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX branches_company_id_index ON branches (company_id);

CREATE TABLE customers (
    id          bigserial PRIMARY KEY,
    company_id  bigint NOT NULL REFERENCES companies (id),
    name        varchar(255) NOT NULL,
    email       varchar(255),
    phone       varchar(255),
    source      varchar(255),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
-- The app's global (not per-tenant) unique email; NULL emails do not collide, '' did (2025-11-13).
CREATE UNIQUE INDEX customers_email_unique ON customers (email);
CREATE INDEX customers_company_id_index ON customers (company_id);
CREATE INDEX customers_phone_index ON customers (phone);

CREATE TABLE staff (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id      bigint NOT NULL REFERENCES companies (id),
    branch_id       uuid REFERENCES branches (id),
    name            varchar(255) NOT NULL,
    email           varchar(255),
    calcom_user_id  bigint,
    is_active       boolean NOT NULL DEFAULT true,
    CONSTRAINT staff_company_id_email_unique UNIQUE (company_id, email)
);
CREATE INDEX staff_calcom_user_id_index ON staff (calcom_user_id);

CREATE TABLE services (
    id                    bigserial PRIMARY KEY,
    company_id            bigint NOT NULL REFERENCES companies (id),
    name                  varchar(255) NOT NULL,
    duration_minutes      integer NOT NULL DEFAULT 60,
    composite             boolean NOT NULL DEFAULT false,
    segments              jsonb,
    calcom_event_type_id  bigint,
    CONSTRAINT services_calcom_event_type_id_unique UNIQUE (calcom_event_type_id)
);
CREATE INDEX services_company_id_index ON services (company_id);

CREATE TABLE calcom_event_map (
    id                   bigserial PRIMARY KEY,
    service_id           bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    segment_key          varchar(50) NOT NULL,
    staff_id             uuid NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    event_type_id        bigint NOT NULL,
    child_event_type_id  bigint,
    CONSTRAINT calcom_event_map_service_segment_staff_unique UNIQUE (service_id, segment_key, staff_id)
);
CREATE INDEX calcom_event_map_staff_id_index ON calcom_event_map (staff_id);

CREATE TABLE appointments (
    id                        bigserial PRIMARY KEY,
    company_id                bigint NOT NULL REFERENCES companies (id),
    branch_id                 uuid REFERENCES branches (id),
    customer_id               bigint NOT NULL REFERENCES customers (id),
    service_id                bigint REFERENCES services (id),
    staff_id                  uuid REFERENCES staff (id) ON DELETE SET NULL,
    starts_at                 timestamptz NOT NULL,
    ends_at                   timestamptz,
    status                    varchar(255) NOT NULL DEFAULT 'pending',
    booking_timezone          varchar(64) NOT NULL DEFAULT 'Europe/Berlin',
    source                    varchar(255),
    sync_origin               varchar(20),
    calcom_booking_id         bigint,
    calcom_v2_booking_id      varchar(255),
    calcom_v2_booking_uid     varchar(50),
    calcom_sync_status        varchar(32) NOT NULL DEFAULT 'pending',
    sync_error_message        varchar(255),
    sync_error_code           varchar(50),
    sync_attempt_count        smallint NOT NULL DEFAULT 0,
    last_sync_attempt_at      timestamptz,
    requires_manual_review    boolean NOT NULL DEFAULT false,
    manual_review_flagged_at  timestamptz,
    idempotency_key           varchar(36),
    version                   integer NOT NULL DEFAULT 1,
    is_composite              boolean NOT NULL DEFAULT false,
    metadata                  jsonb,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT appointments_calcom_v2_booking_id_unique UNIQUE (calcom_v2_booking_id)
);
CREATE INDEX appointments_company_id_index ON appointments (company_id);
CREATE INDEX appointments_customer_id_index ON appointments (customer_id);
CREATE INDEX appointments_service_id_index ON appointments (service_id);
CREATE INDEX appointments_staff_id_starts_at_index ON appointments (staff_id, starts_at);
CREATE INDEX appointments_starts_at_index ON appointments (starts_at);
CREATE INDEX appointments_calcom_booking_id_index ON appointments (calcom_booking_id);
CREATE INDEX appointments_calcom_sync_status_index ON appointments (calcom_sync_status);

CREATE TABLE appointment_phases (
    id                    bigserial PRIMARY KEY,
    appointment_id        bigint NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
    phase_type            varchar(20) NOT NULL,
    segment_name          varchar(255),
    segment_key           varchar(50),
    sequence_order        integer,
    start_offset_minutes  integer NOT NULL DEFAULT 0,
    duration_minutes      integer NOT NULL,
    staff_required        boolean NOT NULL DEFAULT true,
    start_time            timestamptz NOT NULL,
    end_time              timestamptz NOT NULL,
    calcom_booking_id     bigint,
    calcom_booking_uid    varchar(255),
    calcom_sync_status    varchar(20) NOT NULL DEFAULT 'pending',
    sync_error_message    text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- the app's MySQL ENUM(initial, processing, final)
    CONSTRAINT appointment_phases_phase_type_check CHECK (phase_type IN ('initial', 'processing', 'final'))
);
CREATE INDEX appointment_phases_start_time_end_time_index ON appointment_phases (start_time, end_time);
CREATE INDEX appointment_phases_appointment_id_phase_type_index
    ON appointment_phases (appointment_id, phase_type);
CREATE INDEX appointment_phases_staff_required_index ON appointment_phases (staff_required);
CREATE INDEX appointment_phases_appointment_id_sequence_order_index
    ON appointment_phases (appointment_id, sequence_order);
CREATE INDEX appointment_phases_appointment_id_calcom_sync_status_index
    ON appointment_phases (appointment_id, calcom_sync_status);
"""

DOWNGRADE_SQL = """
DROP TABLE appointment_phases;
DROP TABLE appointments;
DROP TABLE calcom_event_map;
DROP TABLE services;
DROP TABLE staff;
DROP TABLE customers;
DROP TABLE branches;
DROP TABLE companies;
"""


def upgrade() -> None:
    op.execute(UPGRADE_SQL)


def downgrade() -> None:
    op.execute(DOWNGRADE_SQL)
