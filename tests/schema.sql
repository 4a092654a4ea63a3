CREATE TABLE public.appointment_phases (
    id bigint NOT NULL,
    appointment_id bigint NOT NULL,
    phase_type character varying(20) NOT NULL,
    segment_name character varying(255),
    segment_key character varying(50),
    sequence_order integer,
    start_offset_minutes integer DEFAULT 0 NOT NULL,
    duration_minutes integer NOT NULL,
    staff_required boolean DEFAULT true NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    calcom_booking_id bigint,
    calcom_booking_uid character varying(255),
    calcom_sync_status character varying(20) DEFAULT 'pending'::character varying NOT NULL,
    sync_error_message text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT appointment_phases_phase_type_check CHECK (((phase_type)::text = ANY ((ARRAY['initial'::character varying, 'processing'::character varying, 'final'::character varying])::text[])))
);

CREATE SEQUENCE public.appointment_phases_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.appointment_phases_id_seq OWNED BY public.appointment_phases.id;

CREATE TABLE public.appointments (
    id bigint NOT NULL,
    company_id bigint NOT NULL,
    branch_id uuid,
    customer_id bigint NOT NULL,
    service_id bigint,
    staff_id uuid,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone,
    status character varying(255) DEFAULT 'pending'::character varying NOT NULL,
    booking_timezone character varying(64) DEFAULT 'Europe/Berlin'::character varying NOT NULL,
    source character varying(255),
    sync_origin character varying(20),
    calcom_booking_id bigint,
    calcom_v2_booking_id character varying(255),
    calcom_v2_booking_uid character varying(50),
    calcom_sync_status character varying(32) DEFAULT 'pending'::character varying NOT NULL,
    sync_error_message character varying(255),
    sync_error_code character varying(50),
    sync_attempt_count smallint DEFAULT 0 NOT NULL,
    last_sync_attempt_at timestamp with time zone,
    requires_manual_review boolean DEFAULT false NOT NULL,
    manual_review_flagged_at timestamp with time zone,
    idempotency_key character varying(36),
    version integer DEFAULT 1 NOT NULL,
    is_composite boolean DEFAULT false NOT NULL,
    metadata jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.appointments_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.appointments_id_seq OWNED BY public.appointments.id;

CREATE TABLE public.branches (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    company_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.calcom_event_map (
    id bigint NOT NULL,
    service_id bigint NOT NULL,
    segment_key character varying(50) NOT NULL,
    staff_id uuid NOT NULL,
    event_type_id bigint NOT NULL,
    child_event_type_id bigint
);

CREATE SEQUENCE public.calcom_event_map_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.calcom_event_map_id_seq OWNED BY public.calcom_event_map.id;

CREATE TABLE public.companies (
    id bigint NOT NULL,
    name character varying(255) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.companies_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.companies_id_seq OWNED BY public.companies.id;

CREATE TABLE public.customers (
    id bigint NOT NULL,
    company_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    email character varying(255),
    phone character varying(255),
    source character varying(255),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    deleted_at timestamp with time zone
);

CREATE SEQUENCE public.customers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.customers_id_seq OWNED BY public.customers.id;

CREATE TABLE public.services (
    id bigint NOT NULL,
    company_id bigint NOT NULL,
    name character varying(255) NOT NULL,
    duration_minutes integer DEFAULT 60 NOT NULL,
    composite boolean DEFAULT false NOT NULL,
    segments jsonb,
    calcom_event_type_id bigint
);

CREATE SEQUENCE public.services_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.services_id_seq OWNED BY public.services.id;

CREATE TABLE public.staff (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    company_id bigint NOT NULL,
    branch_id uuid,
    name character varying(255) NOT NULL,
    email character varying(255),
    calcom_user_id bigint,
    is_active boolean DEFAULT true NOT NULL
);

ALTER TABLE ONLY public.appointment_phases ALTER COLUMN id SET DEFAULT nextval('public.appointment_phases_id_seq'::regclass);

ALTER TABLE ONLY public.appointments ALTER COLUMN id SET DEFAULT nextval('public.appointments_id_seq'::regclass);

ALTER TABLE ONLY public.calcom_event_map ALTER COLUMN id SET DEFAULT nextval('public.calcom_event_map_id_seq'::regclass);

ALTER TABLE ONLY public.companies ALTER COLUMN id SET DEFAULT nextval('public.companies_id_seq'::regclass);

ALTER TABLE ONLY public.customers ALTER COLUMN id SET DEFAULT nextval('public.customers_id_seq'::regclass);

ALTER TABLE ONLY public.services ALTER COLUMN id SET DEFAULT nextval('public.services_id_seq'::regclass);

ALTER TABLE ONLY public.appointment_phases
    ADD CONSTRAINT appointment_phases_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_calcom_v2_booking_id_unique UNIQUE (calcom_v2_booking_id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.branches
    ADD CONSTRAINT branches_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_service_segment_staff_unique UNIQUE (service_id, segment_key, staff_id);

ALTER TABLE ONLY public.companies
    ADD CONSTRAINT companies_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_calcom_event_type_id_unique UNIQUE (calcom_event_type_id);

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_company_id_email_unique UNIQUE (company_id, email);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_pkey PRIMARY KEY (id);

CREATE INDEX appointment_phases_appointment_id_calcom_sync_status_index ON public.appointment_phases USING btree (appointment_id, calcom_sync_status);

CREATE INDEX appointment_phases_appointment_id_phase_type_index ON public.appointment_phases USING btree (appointment_id, phase_type);

CREATE INDEX appointment_phases_appointment_id_sequence_order_index ON public.appointment_phases USING btree (appointment_id, sequence_order);

CREATE INDEX appointment_phases_staff_required_index ON public.appointment_phases USING btree (staff_required);

CREATE INDEX appointment_phases_start_time_end_time_index ON public.appointment_phases USING btree (start_time, end_time);

CREATE INDEX appointments_calcom_booking_id_index ON public.appointments USING btree (calcom_booking_id);

CREATE INDEX appointments_calcom_sync_status_index ON public.appointments USING btree (calcom_sync_status);

CREATE INDEX appointments_company_id_index ON public.appointments USING btree (company_id);

CREATE INDEX appointments_customer_id_index ON public.appointments USING btree (customer_id);

CREATE INDEX appointments_service_id_index ON public.appointments USING btree (service_id);

CREATE INDEX appointments_staff_id_starts_at_index ON public.appointments USING btree (staff_id, starts_at);

CREATE INDEX appointments_starts_at_index ON public.appointments USING btree (starts_at);

CREATE INDEX branches_company_id_index ON public.branches USING btree (company_id);

CREATE INDEX calcom_event_map_staff_id_index ON public.calcom_event_map USING btree (staff_id);

CREATE INDEX customers_company_id_index ON public.customers USING btree (company_id);

CREATE UNIQUE INDEX customers_email_unique ON public.customers USING btree (email);

CREATE INDEX customers_phone_index ON public.customers USING btree (phone);

CREATE INDEX services_company_id_index ON public.services USING btree (company_id);

CREATE INDEX staff_calcom_user_id_index ON public.staff USING btree (calcom_user_id);

ALTER TABLE ONLY public.appointment_phases
    ADD CONSTRAINT appointment_phases_appointment_id_fkey FOREIGN KEY (appointment_id) REFERENCES public.appointments(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_branch_id_fkey FOREIGN KEY (branch_id) REFERENCES public.branches(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_service_id_fkey FOREIGN KEY (service_id) REFERENCES public.services(id);

ALTER TABLE ONLY public.appointments
    ADD CONSTRAINT appointments_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES public.staff(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.branches
    ADD CONSTRAINT branches_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_service_id_fkey FOREIGN KEY (service_id) REFERENCES public.services(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.calcom_event_map
    ADD CONSTRAINT calcom_event_map_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES public.staff(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.services
    ADD CONSTRAINT services_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_branch_id_fkey FOREIGN KEY (branch_id) REFERENCES public.branches(id);

ALTER TABLE ONLY public.staff
    ADD CONSTRAINT staff_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id);
