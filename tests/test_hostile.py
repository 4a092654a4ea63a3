"""The Cal.com client and the worker against a hostile server (worker/devtools/hostile.py), over real HTTP.

Every answer has a meaning (a category, retried or dead), reads are bounded in bytes, time and memory (measured
on a child process: ``os.wait4`` gives its own peak RSS), and what is kept is fit for PostgreSQL (it goes
through a real server) and never holds the API key. End to end: the real worker on a real database, asserting
the event is retried or dead as its category says and the attempt is archived.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pytest_postgresql.executors import PostgreSQLExecutor

from tests.conftest import Db
from tests.worker_support import API_KEY, FUTURE, appointment, attempts, book, drain, salon
from worker.devtools.hostile import HostileProcess
from worker.resources import ROOT
from worker.sync.calcom import CalcomClient, Exchange, booking_data
from worker.sync.categories import AMBIGUOUS, Category
from worker.sync.ratelimit import RateLimiter
from worker.text import BODY_CAP, REPLACEMENT, fit, redact

__all__ = ["salon"]  # fixtures

MiB = 1 << 20
BODY = {"start": "2030-01-01T10:00:00.000Z", "eventTypeId": 8001, "metadata": {"calsync_appointment_id": "1"}}
PEAK_BOUND_MB = 200


@pytest.fixture(scope="module")
def pg(postgresql_proc: PostgreSQLExecutor) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the session's server (no clone: the checks need no schema)."""
    server = Db(postgresql_proc.host, postgresql_proc.port, postgresql_proc.user, "postgres")
    with server.connect(autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileProcess]:
    with HostileProcess() as server:
        yield server


def call(url: str, action: str = "create", timeout_s: float = 5.0, **kw: Any) -> Exchange:
    """One request of the real client, in this process."""

    async def run() -> Exchange:
        client = CalcomClient(url, API_KEY, RateLimiter(1_000_000, 1), timeout_s=timeout_s, **kw)
        try:
            if action == "lookup":
                start = dt.datetime(2030, 1, 1, 10, tzinfo=dt.UTC)
                return await client.find(8001, start, start + dt.timedelta(minutes=30), "a@b.example", None)
            return await client.create(dict(BODY), None)
        finally:
            await client.aclose()

    return asyncio.run(run())


def assert_kept_well(ex: Exchange, pg: psycopg.Connection[tuple[object, ...]]) -> None:
    """What the exchange keeps: capped, clean (PostgreSQL takes it), and without the key anywhere."""
    archived = ex.archive(1)
    everything = repr(ex) + json.dumps(archived, ensure_ascii=False)
    assert API_KEY not in everything and "Bearer " + API_KEY not in everything
    assert ex.text is None or len(ex.text.encode()) <= BODY_CAP
    assert "\x00" not in everything
    pg.execute(  # the archive's texts and JSON go through PostgreSQL
        "SELECT %s::text, %s::jsonb, %s::jsonb, %s::text, %s::text",
        [ex.text, Jsonb(archived["response_headers"]), Jsonb(archived["request_body"]), ex.path, archived["error"]],
    )


# case -> (category, retryable, response status, stored body bytes (None: no body), response_size, truncated)
MATRIX: dict[str, tuple[Category, bool, int | None, int | None, int | None, bool]] = {
    "ok": (Category.OK, False, 201, 257, 257, False),
    "bad-json": (Category.MALFORMED_RESPONSE, True, 201, 42, 42, False),
    "html-502": (Category.SERVER_ERROR, True, 502, 93, 93, False),
    "big-10m": (Category.SERVER_ERROR, True, 500, BODY_CAP, 10 * MiB, True),
    "big-100m": (Category.SERVER_ERROR, True, 500, BODY_CAP, 100 * MiB, True),
    "big-chunked": (Category.MALFORMED_RESPONSE, True, 200, BODY_CAP, None, True),
    "gzip-bomb": (Category.MALFORMED_RESPONSE, True, 201, BODY_CAP - BODY_CAP % 3, None, True),
    "gzip-corrupt": (Category.MALFORMED_RESPONSE, True, 201, None, None, True),
    "brotli": (Category.MALFORMED_RESPONSE, True, 201, None, None, True),
    "redirect-302": (Category.REDIRECTED, True, 302, 0, 0, False),
    "redirect-307": (Category.REDIRECTED, True, 307, 0, 0, False),
    "no-data": (Category.MALFORMED_RESPONSE, True, 201, 21, 21, False),
    "empty-data": (Category.MALFORMED_RESPONSE, True, 201, 33, 33, False),
    "array": (Category.MALFORMED_RESPONSE, True, 201, None, None, False),
    "data-array": (Category.MALFORMED_RESPONSE, True, 201, None, None, False),
    "status-error-200": (Category.MALFORMED_RESPONSE, True, 200, 55, 55, False),
    "no-uid": (Category.MALFORMED_RESPONSE, True, 201, None, None, False),
    "odd-types": (Category.MALFORMED_RESPONSE, True, 201, None, None, False),
    "uid-nul": (Category.MALFORMED_RESPONSE, True, 201, None, None, False),
    "bad-time": (Category.MALFORMED_RESPONSE, True, 201, None, None, False),
    "list-bad-item": (Category.MALFORMED_RESPONSE, True, 200, None, None, False),
    "non-json-2xx": (Category.MALFORMED_RESPONSE, True, 200, 2, 2, False),
    "empty-2xx": (Category.MALFORMED_RESPONSE, True, 201, 0, 0, False),
    "deep-json": (Category.MALFORMED_RESPONSE, True, 201, BODY_CAP, 200_000, True),
    "nul-raw": (Category.VALIDATION, False, 400, None, 62, False),
    "nul-json": (Category.VALIDATION, False, 400, 71, 71, False),
    "non-utf8": (Category.VALIDATION, False, 400, None, 62, False),
    "surrogate": (Category.VALIDATION, False, 400, 66, 66, False),
    "many-headers": (Category.MALFORMED_RESPONSE, True, 201, None, None, True),
    "huge-header": (Category.NETWORK, True, None, None, None, False),
    "reflect": (Category.VALIDATION, False, 400, None, 337, False),
    "reflect-ok": (Category.OK, False, 201, None, None, False),
    "ratelimit-garbage": (Category.RATE_LIMITED, True, 429, 113, 113, False),
}


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_every_answer_has_a_meaning_and_is_kept_bounded_clean_and_without_the_key(
    hostile: HostileProcess, pg: psycopg.Connection[tuple[object, ...]], case: str
) -> None:
    category, retryable, status, stored, size, truncated = MATRIX[case]
    ex = call(hostile.url(case))
    assert (ex.verdict.category, ex.verdict.retryable, ex.status) == (category, retryable, status), ex.verdict
    if stored is not None:
        assert ex.text is not None and len(ex.text.encode()) == stored, "the bytes kept"
    if size is not None:
        assert ex.response_size == size, "the size Cal.com sent or declared"
    assert ex.truncated is truncated
    assert ex.archive(1)["response_size"] == ex.response_size
    assert ex.archive(1)["response_truncated"] is truncated
    assert (booking_data(ex) is not None) == (category == Category.OK), "only a real booking is OK"
    assert_kept_well(ex, pg)


@pytest.mark.parametrize(
    ("case", "category"),
    [
        ("ok", Category.OK),
        ("data-array", Category.OK),  # a list of usable bookings is what a lookup asks for
        ("empty-data", Category.MALFORMED_RESPONSE),  # data is an object, not a list
        ("list-bad-item", Category.MALFORMED_RESPONSE),
        ("odd-types", Category.MALFORMED_RESPONSE),
    ],
)
def test_a_lookup_is_ok_only_with_a_list_of_usable_bookings(
    hostile: HostileProcess, pg: psycopg.Connection[tuple[object, ...]], case: str, category: Category
) -> None:
    ex = call(hostile.url(case), "lookup")
    assert ex.verdict.category == category, ex.verdict
    assert_kept_well(ex, pg)


def test_other_reads_ask_for_an_object_and_may_name_their_api_version(hostile: HostileProcess) -> None:
    async def run(case: str, expects: Any) -> Exchange:
        client = CalcomClient(hostile.url(case), API_KEY, RateLimiter(1_000_000, 1), timeout_s=5)
        try:
            path = "/v2/teams/1/event-types/1"  # (GET /v2/event-types/{id} is answered well-formed, for the worker)
            return await client.send("event_type", "GET", path, expects=expects, api_version="2024-06-14")
        finally:
            await client.aclose()

    assert asyncio.run(run("empty-data", "object")).verdict.category == Category.OK, "any object"
    assert asyncio.run(run("data-array", "object")).verdict.category == Category.MALFORMED_RESPONSE
    echoed = asyncio.run(run("reflect", "object")).verdict.message
    assert "cal-api-version: 2024-06-14" in echoed and "2024-08-13" not in echoed


def test_categories_that_may_have_booked_are_looked_up_before_creating_again() -> None:
    assert {Category.MALFORMED_RESPONSE, Category.REDIRECTED} <= AMBIGUOUS


def test_what_each_case_says(hostile: HostileProcess) -> None:
    """The messages name the cause (they are what an operator reads first)."""
    said = {case: call(hostile.url(case)).verdict.message for case in ("big-10m", "gzip-bomb", "redirect-302")}
    assert said["big-10m"].startswith('{"message": "xxx') and said["big-10m"].endswith("…")
    assert len(said["big-10m"].encode()) <= 4 * 1024 + 3
    assert "body over the cap of 262144 bytes" in said["gzip-bomb"]
    assert f"redirected to {hostile.base_url}/ok/v2/bookings" in said["redirect-302"]
    assert "CALCOM_BASE_URL" in said["redirect-302"]
    reflected = call(hostile.url("reflect"))
    assert "Authorization: Bearer [REDACTED]" in reflected.verdict.message
    assert reflected.headers["x-request-id"] == "Bearer [REDACTED]"
    assert reflected.headers["content-type"] == "application/json; key=[REDACTED]"
    assert reflected.text is not None and "Bearer [REDACTED]" in reflected.text
    ok = call(hostile.url("reflect-ok"))
    assert ok.verdict.category == Category.OK and ok.headers["x-request-id"] == "[REDACTED]"
    assert ok.body["data"]["title"] == "booked with Bearer [REDACTED]", "the parsed body is redacted too"
    nul = call(hostile.url("nul-json"))
    assert nul.verdict.message == f"bad{REPLACEMENT}field {REPLACEMENT} here"


def test_redirects_are_never_followed(hostile: HostileProcess) -> None:
    hostile.reset()
    for case in ("redirect-302", "redirect-307"):
        ex = call(hostile.url(case))
        assert ex.headers["location"] == f"{hostile.base_url}/ok/v2/bookings"
    assert [r["case"] for r in hostile.requests()] == ["redirect-302", "redirect-307"], "the target was never asked"


def test_garbage_rate_limit_headers_neither_stop_the_worker_nor_break_the_record(hostile: HostileProcess) -> None:
    ex = call(hostile.url("ratelimit-garbage"))
    assert ex.headers.get("x-ratelimit-reset-default") == "300", "1e12 s is not believed"
    assert "x-ratelimit-remaining-default" not in ex.headers and "x-ratelimit-limit-default" not in ex.headers


@pytest.mark.parametrize("case", ["slow-drip", "hang"])
def test_one_deadline_covers_the_whole_exchange(hostile: HostileProcess, case: str) -> None:
    t0 = time.monotonic()
    ex = call(hostile.url(case), timeout_s=1.0)
    took = time.monotonic() - t0
    assert ex.verdict.category == Category.NETWORK and ex.verdict.retryable
    assert "within the 1 s deadline" in ex.verdict.message
    assert took < 2.0, f"a drip of a byte a second (each read within httpx's timeout) held it {took:.1f} s"
    if case == "slow-drip":
        assert "HTTP 201" in ex.verdict.message, "the headers had come"


def test_the_cap_is_a_setting(hostile: HostileProcess) -> None:
    ex = call(hostile.url("big-10m"), max_response_bytes=1024)
    assert ex.truncated and ex.text is not None and len(ex.text) == 1024
    whole = call(hostile.url("big-10m"), max_response_bytes=11 * MiB)
    assert whole.response_size == 10 * MiB and whole.text is not None and len(whole.text) == BODY_CAP


def test_redact() -> None:
    key = "cal_live_0123456789abcdef"
    assert redact(f"x {key} y Bearer {key}", [key]) == "x [REDACTED] y Bearer [REDACTED]"
    assert redact("Authorization: Bearer sometoken123", []) == "Authorization: Bearer [REDACTED]"
    assert redact("a key cal_test_other_company_key here", []) == "a key [REDACTED] here"
    assert redact("missing bearer token", []) == "missing bearer token", "a word after bearer is no token"
    assert redact(f"cut at {key[:10]}", [key], cut=True) == "cut at [REDACTED]", "half a key at a cut"
    assert redact("nothing", ["", "ab"]) == "nothing", "empty and tiny secrets are not searched"
    cut = fit(("é" * 40_000).encode(), limit=1001)
    assert cut.truncated and cut.size == 80_000 and len(cut.text.encode()) == 1000, "cut at a character boundary"


# -- memory: a child process's own peak RSS -----------------------------------------------------------------
# The child reports its VmHWM (the peak RSS of its own address space, from exec on) as it exits. Not ru_maxrss:
# a child started by vfork/fork inherits the parent's high-water mark there (here: pytest's), which hides it.
REPORT_PEAK = """
import atexit, os
def _report_peak():
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(os.environ["CALSYNC_TEST_PEAK_FILE"], "w") as out:
        out.write(str(kb))
atexit.register(_report_peak)
"""
CLIENT = """
import asyncio, json, sys
from worker.sync.calcom import CalcomClient
from worker.sync.ratelimit import RateLimiter
async def main():
    c = CalcomClient(sys.argv[1], sys.argv[2], RateLimiter(1_000_000, 1), timeout_s=30,
                     max_response_bytes=int(sys.argv[3]))
    ex = await c.create({"start": "2030-01-01T10:00:00.000Z", "eventTypeId": 8001}, None)
    await c.aclose()
    print(json.dumps({"category": str(ex.verdict.category), "kept": len(ex.text or ""), "size": ex.response_size}))
asyncio.run(main())
"""
WORKER = """
import sys
from worker.cli import main
sys.exit(main(sys.argv[1:]))
"""


def measured(script: str, *args: str, timeout_s: float = 120, **env: str) -> tuple[float, int, str]:
    """Run ``script`` as a child Python; its peak RSS in MB, exit status and output."""
    with tempfile.TemporaryDirectory(prefix="calsync-peak-") as tmp:
        peak_file, log_file = Path(tmp) / "peak", Path(tmp) / "log"
        with open(log_file, "w") as log:
            proc = subprocess.run(
                [sys.executable, "-c", REPORT_PEAK + script, *args],
                cwd=ROOT,
                env={**os.environ, **env, "CALSYNC_TEST_PEAK_FILE": str(peak_file)},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        output = log_file.read_text()
        assert peak_file.exists(), output
        return int(peak_file.read_text()) / 1024, proc.returncode, output


def client_peak(url: str, max_bytes: int = 256 * 1024) -> tuple[float, dict[str, Any]]:
    peak, status, output = measured(CLIENT, url, API_KEY, str(max_bytes))
    assert status == 0, output
    return peak, json.loads(output.splitlines()[-1])


@pytest.mark.parametrize("case", ["big-10m", "big-100m", "big-chunked", "gzip-bomb"])
def test_a_big_answer_costs_the_client_no_more_than_a_small_one(hostile: HostileProcess, case: str) -> None:
    base, _ = client_peak(hostile.url("ok"))
    peak, summary = client_peak(hostile.url(case))
    print(f"client peak RSS: {case} {peak:.1f} MB, a booking {base:.1f} MB")  # the figures for the notes (-s)
    assert summary["kept"] <= BODY_CAP
    assert peak <= PEAK_BOUND_MB and peak - base < 16, f"{case}: peak {peak:.0f} MB against {base:.0f} MB for a booking"


def test_the_measurement_sees_a_big_read(hostile: HostileProcess) -> None:
    """The bound above can fail: with the cap lifted, the same measurement sees the 100 MB body."""
    peak, summary = client_peak(hostile.url("big-100m"), max_bytes=200 * MiB)
    print(f"client peak RSS: big-100m with the cap lifted {peak:.1f} MB")
    assert summary["size"] == 100 * MiB and peak > 150, f"peak {peak:.0f} MB"


# -- end to end: the real worker on a real database ----------------------------------------------------------
def run_worker(db: Db, hostile: HostileProcess, case: str, **over: Any) -> None:
    drain(db, hostile, base_url=hostile.url(case), **over)  # type: ignore[arg-type]  # only its base_url is used


def tries(db: Db, appointment_id: int) -> list[dict[str, Any]]:
    """The archived attempts in the order they were made."""
    return sorted(attempts(db, appointment_id), key=lambda t: (t["created_at"], t["id"]))


def delivery(db: Db) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT status, attempts, last_category, status = 'retry' AND next_attempt_at > now() "
            "FROM calsync.outbox_delivery"
        ).fetchall()


def make_due(db: Db) -> None:
    with db.connect() as conn:
        conn.execute("UPDATE calsync.outbox_delivery SET next_attempt_at = now()")
        conn.commit()


def test_e2e_malformed_is_looked_up_retried_and_recovers(
    db: Db, hostile: HostileProcess, salon: dict[str, Any]
) -> None:
    a = book(db, salon)
    hostile.reset()
    run_worker(db, hostile, "empty-data")
    assert [r["method"] for r in hostile.requests()] == ["POST", "GET"], "a create that may have booked is looked up"
    made = tries(db, a)
    assert [(t["action"], t["category"], t["retryable"]) for t in made] == [
        ("create", "MALFORMED_RESPONSE", True),
        ("lookup", "MALFORMED_RESPONSE", True),
    ]
    assert made[0]["response_body"] == '{"status": "success", "data": {}}'
    assert delivery(db) == [("retry", 1, "MALFORMED_RESPONSE", True)], "retried, not dead, not delivered"
    row = appointment(db, a)
    assert row["calcom_sync_status"] != "synced" and row["calcom_v2_booking_uid"] is None
    make_due(db)
    run_worker(db, hostile, "ok")
    assert appointment(db, a)["calcom_sync_status"] == "synced", "nothing is lost"


def test_e2e_redirected_is_retried_and_never_followed(db: Db, hostile: HostileProcess, salon: dict[str, Any]) -> None:
    a = book(db, salon)
    hostile.reset()
    run_worker(db, hostile, "redirect-302")
    assert {r["case"] for r in hostile.requests()} == {"redirect-302"}, "never followed"
    made = tries(db, a)
    assert made[0]["category"] == "REDIRECTED" and made[0]["retryable"] is True
    assert made[0]["response_headers"]["location"] == f"{hostile.base_url}/ok/v2/bookings"
    assert "CALCOM_BASE_URL" in made[0]["error"]
    # a problem of the base URL, not of the appointment: the key is paused, the event due again, no attempt counted
    assert delivery(db) == [("retry", 0, "REDIRECTED", False)]


def test_e2e_a_100_mb_error_body_is_a_server_error_stored_capped(
    db: Db, hostile: HostileProcess, salon: dict[str, Any]
) -> None:
    a = book(db, salon)
    run_worker(db, hostile, "big-100m")
    [create, lookup] = tries(db, a)
    assert (create["category"], create["response_status"]) == ("SERVER_ERROR", 500)
    assert len(create["response_body"].encode()) == BODY_CAP and lookup["category"] == "SERVER_ERROR"
    assert delivery(db) == [("retry", 1, "SERVER_ERROR", True)]
    assert len(appointment(db, a)["sync_error_message"].encode()) <= BODY_CAP + 20


def test_e2e_a_drip_is_a_network_error_after_the_deadline(
    db: Db, hostile: HostileProcess, salon: dict[str, Any]
) -> None:
    a = book(db, salon)
    t0 = time.monotonic()
    run_worker(db, hostile, "slow-drip", request_timeout_s=1)
    assert time.monotonic() - t0 < 10
    made = tries(db, a)
    assert made[0]["category"] == "NETWORK" and 900 < made[0]["duration_ms"] < 2000
    assert delivery(db) == [("retry", 1, "NETWORK", True)]


def test_e2e_nul_bytes_in_an_error_are_recorded_and_the_event_is_dead(
    db: Db, hostile: HostileProcess, salon: dict[str, Any]
) -> None:
    a = book(db, salon)
    run_worker(db, hostile, "nul-raw")
    made = tries(db, a)
    assert made and all(t["category"] == "VALIDATION" for t in made)
    assert f"bad{REPLACEMENT}field" in made[0]["response_body"]
    assert delivery(db) == [("dead", 1, "VALIDATION", False)]
    row = appointment(db, a)
    assert row["calcom_sync_status"] == "failed" and row["requires_manual_review"]
    assert f"bad{REPLACEMENT}field" in row["sync_error_message"]


def test_e2e_garbage_rate_limit_headers_are_recorded_within_bounds(
    db: Db, hostile: HostileProcess, salon: dict[str, Any]
) -> None:
    a = book(db, salon)
    run_worker(db, hostile, "ratelimit-garbage")
    with db.connect() as conn:
        row = conn.execute(
            "SELECT last_category, next_attempt_at < now() + interval '6 minutes' FROM calsync.outbox_delivery"
        ).fetchone()
    assert row == ("RATE_LIMITED", True), "the 1e12 s reset was not believed"
    assert appointment(db, a)["calcom_sync_status"] != "synced"


@pytest.mark.parametrize("case", ["reflect", "reflect-ok"])
def test_e2e_a_reflected_key_is_stored_nowhere(
    db: Db, hostile: HostileProcess, salon: dict[str, Any], case: str
) -> None:
    a = book(db, salon)
    run_worker(db, hostile, case)
    assert attempts(db, a), "the attempt is archived"
    with db.connect() as conn:
        dump = conn.execute(
            "SELECT concat((SELECT string_agg(t::text, '') FROM calsync.sync_attempts t),"
            " (SELECT string_agg(d::text, '') FROM calsync.outbox_delivery d),"
            " (SELECT string_agg(p::text, '') FROM appointments p))"
        ).fetchone()
    assert dump is not None and API_KEY not in str(dump[0])
    assert "[REDACTED]" in str(dump[0]), "the reflection reached the database, redacted"
    expected = "synced" if case == "reflect-ok" else "failed"
    assert appointment(db, a)["calcom_sync_status"] == expected


def worker_peak(db: Db, base_url: str) -> float:
    """`calsync worker --once` (worker.cli.main in a child process): its peak RSS in MB."""
    peak, status, output = measured(
        WORKER,
        "worker",
        "--once",
        CALCOM_API_KEY=API_KEY,
        CALSYNC_DATABASE_URL=db.url,
        CALCOM_BASE_URL=base_url,
        CALSYNC_POLL_INTERVAL_S="0.2",
    )
    assert status == 0, output
    assert API_KEY not in output, "nor logged"
    return peak


@pytest.mark.parametrize("case", ["big-100m", "gzip-bomb"])
def test_e2e_the_worker_process_stays_small(db: Db, hostile: HostileProcess, salon: dict[str, Any], case: str) -> None:
    """The real worker against the 100 MB body and the gzip bomb (four appointments: create and lookup each),
    then, their retries due, against well-formed answers with four more: the hostile run costs no more memory
    than the good one, and nothing was lost."""
    hostile_ids = [book(db, salon, start=FUTURE + dt.timedelta(hours=2 * i)) for i in range(4)]
    peak = worker_peak(db, hostile.url(case))
    for i in hostile_ids:
        assert [t["action"] for t in tries(db, i)] == ["create", "lookup"], "every attempt archived"
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT status, last_category, count(*) FROM calsync.outbox_delivery GROUP BY 1, 2"
        ).fetchall()
    category = "SERVER_ERROR" if case == "big-100m" else "MALFORMED_RESPONSE"
    assert rows == [("retry", category, 4)], "each retried"
    make_due(db)
    good_ids = [book(db, salon, start=FUTURE + dt.timedelta(days=1, hours=2 * i)) for i in range(4)]
    base = worker_peak(db, hostile.url("ok"))
    print(f"worker peak RSS: {case} {peak:.1f} MB, well-formed answers {base:.1f} MB")
    assert peak <= PEAK_BOUND_MB and peak - base < 16, f"{case}: peak RSS {peak:.0f} MB against {base:.0f} MB"
    assert all(appointment(db, i)["calcom_sync_status"] == "synced" for i in hostile_ids + good_ids)


@pytest.mark.parametrize("value", ["bad\x00field", "lone \ud800"])
def test_the_database_refuses_what_fit_removes(pg: psycopg.Connection[tuple[object, ...]], value: str) -> None:
    """Why worker.text exists (and the checks above can fail): PostgreSQL takes neither, but what fit makes of them."""
    with pytest.raises((psycopg.DataError, UnicodeEncodeError)):
        pg.execute("SELECT %s::text", [value])
    pg.execute("SELECT %s::text, %s::jsonb", [fit(value).text, Jsonb({"v": fit(value).text})])
