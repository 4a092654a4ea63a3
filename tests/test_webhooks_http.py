"""`calsync webhooks` as a real process: signatures (valid, invalid, missing, unsigned), bounds (413, 400), the
health endpoint, per-company secrets, and that nothing secret is stored."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Db
from tests.webhook_support import SECRET, ReceiverProcess, body, cancel
from worker.resources import ROOT
from worker.webhooks import signature


def deliveries(db: Db) -> list[dict[str, Any]]:
    with db.connect() as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return [dict(r) for r in cur.execute("SELECT * FROM calsync.webhook_deliveries ORDER BY id")]


def test_signatures_bounds_and_health(db: Db) -> None:
    raw = body("BOOKING_CREATED", "walk-in-1", startTime="2030-01-01T10:00:00Z")
    with ReceiverProcess(db, CALSYNC_WEBHOOK_MAX_BODY_BYTES="4096") as r:
        assert r.post(raw, secret="not-the-secret").status_code == 401
        assert r.post(raw, secret=None).status_code == 401, "a missing signature"
        assert r.post(raw, sig="no-secret-provided").status_code == 401, "unsigned, not allowed"
        assert r.post(raw, sig="0" * 64).status_code == 401
        assert r.post(raw, sig=signature.sign(SECRET, raw).upper()).status_code == 401, "lowercase hex only"
        assert deliveries(db) == [], "a refused delivery changed something"
        ok = r.post(raw)
        assert ok.status_code == 200 and ok.json()["outcome"] == "listed", ok.text
        assert r.post(raw).json()["outcome"] == "duplicate"
        big = body("BOOKING_CREATED", "big", title="x" * 5000)
        assert r.post(big).status_code == 413
        chunked = httpx.post(r.url + "/webhooks/calcom", content=iter([big[:3000], big[3000:]]), timeout=10,
                             headers={signature.HEADER: signature.sign(SECRET, big)}, trust_env=False)  # fmt: skip
        assert chunked.status_code == 413, "a body without Content-Length is capped as it is read"
        assert r.post(b"{not json").status_code == 400
        assert r.post(b"[1, 2]").status_code == 400
        unknown = r.post(body("OOO_CREATED", None, reason="Urlaub"))
        assert unknown.status_code == 200 and unknown.json()["outcome"] == "ignored"
        health = httpx_get(r.url + "/healthz")
        assert health == (200, "ok")
    rows = deliveries(db)
    assert [d["outcome"] for d in rows] == ["listed", "duplicate", "ignored"]
    for d in rows:
        stored = json.dumps(d["headers"]) + d["body"]
        assert SECRET not in stored and "X-Cal-Signature-256".lower() not in stored.lower()
        assert d["signature"] == "valid" and d["headers"]["X-Cal-Webhook-Version"] == "2021-10-20"
    assert rows[0]["body"] == raw.decode(), "the raw body is kept as received"


def httpx_get(url: str) -> tuple[int, str]:
    r = httpx.get(url, timeout=10, trust_env=False)
    return r.status_code, str(r.json().get("status"))


def test_unsigned_deliveries_only_where_allowed(db: Db) -> None:
    raw = body("BOOKING_CREATED", "walk-in-2")
    with ReceiverProcess(db, CALCOM_WEBHOOK_SECRET="", CALSYNC_WEBHOOK_ALLOW_UNSIGNED="1") as r:
        got = r.post(raw, sig="no-secret-provided")
        assert got.status_code == 200, got.text
        assert r.post(body("BOOKING_CREATED", "walk-in-3"), secret="guess").status_code == 401, "no secret to check"
    assert [d["signature"] for d in deliveries(db)] == ["unsigned"]


def test_per_company_secret_then_the_single_one(db: Db, tmp_path: Path) -> None:
    company = tmp_path / "creds" / "7"
    company.mkdir(parents=True)
    (company / "calcom_webhook_secret").write_text("whsec_company_seven\n")
    os.chmod(company / "calcom_webhook_secret", 0o600)
    with ReceiverProcess(db, CALSYNC_CREDENTIALS_DIR=str(tmp_path / "creds")) as r:
        own = body("BOOKING_CREATED", "c7-1")
        assert r.post(own, secret=SECRET, path="/webhooks/calcom/7").status_code == 401, "company 7 has its own secret"
        assert r.post(own, secret="whsec_company_seven", path="/webhooks/calcom/7").status_code == 200
        # rotation needs no restart: the file is read on each delivery
        (company / "calcom_webhook_secret").write_text("whsec_rotated")
        rotated = body("BOOKING_CREATED", "c7-2")
        assert r.post(rotated, secret="whsec_company_seven", path="/webhooks/calcom/7").status_code == 401
        assert r.post(rotated, secret="whsec_rotated", path="/webhooks/calcom/7").status_code == 200
        # a company without a secret of its own: the single one
        assert r.post(body("BOOKING_CREATED", "c8-1"), path="/webhooks/calcom/8").status_code == 200
    rows = deliveries(db)
    assert [(d["company_id"], d["outcome"]) for d in rows] == [(7, "listed"), (7, "listed"), (8, "listed")]
    assert not any("whsec_" in d["body"] + json.dumps(d["headers"]) for d in rows)


def test_no_secret_at_all_refuses_to_start(db: Db) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALCOM_WEBHOOK", "CREDENTIALS_DIRECTORY"))}
    env["CALSYNC_DATABASE_URL"] = db.url
    proc = subprocess.run([sys.executable, "-m", "worker", "webhooks"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "no Cal.com webhook secret" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, "one line, no traceback"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies() -> None:
    unit = (ROOT / "deploy" / "calsync-webhooks.service").read_text()
    needs = ("Type=notify", "WatchdogSec=", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict",
             "PrivateTmp=yes", "LoadCredential=calcom_webhook_secret", "User=calsync",
             "CapabilityBoundingSet=")  # fmt: skip
    for needed in needs:
        assert needed in unit
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calsync-webhooks.service"
        path.write_text(unit.replace("/opt/calsync/.venv/bin/calsync", str(ROOT / ".venv" / "bin" / "calsync")))
        proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_two_receivers_share_one_port(db: Db) -> None:
    """CALSYNC_WEBHOOK_REUSE_PORT: a second receiver listens on the first one's port (without the setting it could
    not bind it); deliveries on fresh connections are spread by the kernel, and each is stored exactly once,
    whichever process took it, a redelivery to the other process included."""
    raws = [body("BOOKING_CREATED", f"shared-{i}") for i in range(40)]
    with ReceiverProcess(db, CALSYNC_WEBHOOK_REUSE_PORT="1") as a:
        port = a.url.rsplit(":", 1)[1]
        with ReceiverProcess(db, CALSYNC_WEBHOOK_REUSE_PORT="1", CALSYNC_WEBHOOK_LISTEN=f"127.0.0.1:{port}") as b:
            assert b.url == a.url
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda raw: a.post(raw), raws + raws[:10]))
            taken = [r.output().count('"event": "webhook_received"') for r in (a, b)]
    assert all(x.status_code == 200 for x in answers), [x.text for x in answers if x.status_code != 200]
    assert sum(taken) == 50 and min(taken) > 0, f"each process took some: {taken}"
    rows = deliveries(db)
    assert sorted(Counter(d["outcome"] for d in rows).items()) == [("duplicate", 10), ("listed", 40)]


def test_a_burst_is_stored_exactly_once(db: Db) -> None:
    """Deliveries arriving together share batches (one call, one commit); each is answered after its commit, and
    the redeliveries among them are duplicates."""
    raws = [body("BOOKING_CREATED", f"burst-{i}") for i in range(60)]
    with ReceiverProcess(db, CALSYNC_WEBHOOK_POOL="3") as r, ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda raw: r.post(raw), raws + raws[:20]))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    rows = deliveries(db)
    assert len(rows) == 80
    assert sorted(Counter(d["outcome"] for d in rows).items()) == [("duplicate", 20), ("listed", 60)]
    assert {d["event_key"] for d in rows} == {f"BOOKING_CREATED:burst-{i}" for i in range(60)}


def test_a_delivery_whose_apply_fails_is_answered_200_and_kept(db: Db) -> None:
    """An error while applying (here a trigger that refuses every listed booking, with its own SQLSTATE) does not
    fail the call: the delivery and those sharing its batch are stored and answered 200 (before revision 0028
    the receiver answered 500 and stored nothing)."""
    with db.connect() as conn:
        conn.execute("""
            CREATE FUNCTION tests.refuse_listing() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                IF NEW.uid LIKE 'poison-%' THEN
                    RAISE EXCEPTION 'the test refuses listing %', NEW.uid USING ERRCODE = '55000';
                END IF;
                RETURN NEW;
            END
            $f$;
            CREATE TRIGGER foreign_calcom_bookings_test_refuses BEFORE INSERT ON calsync.foreign_calcom_bookings
                FOR EACH ROW EXECUTE FUNCTION tests.refuse_listing();""")
        conn.commit()
    raws = [body("BOOKING_CREATED", f"{'poison' if i % 5 == 0 else 'fine'}-{i}") for i in range(40)]
    with ReceiverProcess(db, CALSYNC_WEBHOOK_POOL="2") as r, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda raw: r.post(raw), raws))
        log = r.output()
    assert [a.status_code for a in answers] == [200] * 40, [a.text for a in answers if a.status_code != 200]
    assert Counter(a.json()["outcome"] for a in answers) == {"listed": 32, "parked": 8}
    rows = deliveries(db)
    assert len(rows) == 40
    for d in rows:
        poisoned = d["booking_uid"].startswith("poison-")
        assert d["outcome"] == ("parked" if poisoned else "listed"), d
        assert not poisoned or "SQLSTATE 55000" in d["detail"], d["detail"]
    assert '"webhook_not_stored"' not in log and '"webhook_batch_refused"' not in log, log


def test_the_timer_retries_parked_deliveries_in_small_transactions(db: Db) -> None:
    """The receiver's timer retries the parked deliveries that are due in transactions of CALSYNC_WEBHOOK_RETRY_BATCH
    (so none holds the bookings' rows for long), as many rounds as it takes, spread over the tick: five due at once
    with a batch of 2 are all retried in the one tick (here they have waited longer than webhook_park_max, so they
    end unmatched)."""
    with db.connect() as conn:
        for key, value in (("webhook_park_base", "1 millisecond"), ("webhook_park_max", "1 second")):
            conn.execute("UPDATE calsync.settings SET value = %s WHERE key = %s", [value, key])
        conn.commit()
    with ReceiverProcess(db, CALSYNC_WEBHOOK_RETRY_S="4", CALSYNC_WEBHOOK_RETRY_BATCH="2") as r:
        answers = [r.post(cancel(f"never-{i}")) for i in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        assert Counter(d["outcome"] for d in deliveries(db)) == {"parked": 5}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and '"event": "webhooks_retried"' not in r.output():
            time.sleep(0.1)
        retried = [json.loads(line) for line in r.output().splitlines() if '"webhooks_retried"' in line]
    assert retried and (retried[0]["settled"], retried[0]["transactions"]) == (5, 3), f"one tick, 3 of 2: {retried}"
    assert Counter(d["outcome"] for d in deliveries(db)) == {"unmatched": 5}


def test_a_bad_setting_is_one_line_naming_it(db: Db) -> None:
    env = {**os.environ, "CALSYNC_DATABASE_URL": db.url, "CALCOM_WEBHOOK_SECRET": SECRET,
           "CALSYNC_WEBHOOK_LISTEN": "localhost"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "worker", "webhooks"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "CALSYNC_WEBHOOK_LISTEN='localhost' is invalid" in proc.stderr
