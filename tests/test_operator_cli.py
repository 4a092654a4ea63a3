"""The operator CLI on the incident's data: `calsync status`, `report`, `remediate` (their --json parsed, not
matched as text), `migrate --preflight`, and the demo's end state."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Db
from worker.devtools import datagen
from worker.ops import migrate
from worker.resources import ROOT


def calsync(db: Db, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALSYNC_DATABASE_URL": db.url}
    return subprocess.run([sys.executable, "-m", "worker", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def incident(fresh_db: Db) -> Iterator[Db]:
    """The incident's initial state, with calsync installed up to the remediation (no rules yet)."""
    migrate.upgrade(fresh_db.url, "0001")
    params = datagen.Params(salons=1, anchor=dt.datetime.now(dt.UTC), failed_permille=0, pending_permille=0,
                            anonymous_percent=0, id_offset=10000)  # fmt: skip
    with psycopg.connect(fresh_db.url) as conn:
        datagen.generate(conn, params, then=("incident_dataset",))
    migrate.upgrade(fresh_db.url, "0005")
    yield fresh_db


def test_status_json_shows_the_incident_dashboard(incident: Db) -> None:
    proc = calsync(incident, "status", "--json")
    assert proc.returncode == 2, "CRITICAL exits 2"
    h = as_json(proc)
    assert (h["health"], h["failed"], h["manual_review"], h["critical_alerts"]) == ("CRITICAL", 23, 23, 2)
    assert float(h["success_rate_24h"]) == pytest.approx(66.67)
    assert h["ancient_failures"] == 6 and h["pending"] == 0
    assert {a["alert"] for a in h["alerts"] if a["severity"] == "critical"} == {"failed_syncs", "success_rate"}


def test_report_json_has_the_incident_distribution(incident: Db) -> None:
    r = as_json(calsync(incident, "report", "--json"))
    dist = {d["category"]: (d["failures"], float(d["share_percent"])) for d in r["distribution"] if d["failures"]}
    assert dist == {"OTHER": (10, 43.5), "DOUBLE_BOOKING": (4, 17.4), "COMPOSITE_FAILURE": (4, 17.4),
                    "PHASE_ERROR": (3, 13.0), "MISSING_CONTACT": (2, 8.7)}  # fmt: skip
    assert sorted(f["appointment_id"] for f in r["failures"]["DOUBLE_BOOKING"]) == [751, 753, 754, 755]
    assert all(f["recommended_action"] for rows in r["failures"].values() for f in rows)


def test_preflight_json_names_the_rules_the_data_breaks(incident: Db) -> None:
    proc = calsync(incident, "migrate", "--preflight", "--json")
    assert proc.returncode == 1
    found = {f["rule"]: f["first_ids"] for f in as_json(proc) if f["violations"]}
    assert found["appointments_service_required"] == [15]
    assert found["appointments_one_live_per_customer_slot"] == [754, 755]
    assert found["host_busy_time_no_overlap"][0] == 751


def test_remediate_dry_run_then_run_then_undo(incident: Db) -> None:
    dry = as_json(calsync(incident, "remediate", "--dry-run", "--json"))
    assert dry["dry_run"] is True and dry["after"]["health"]["failed"] == 23, "a dry run changes nothing"
    cancelled = {c["row_id"] for c in dry["changes"]["duplicates"] if c["after"].get("status") == "cancelled"}
    assert cancelled == {754, 755}, "#753 is kept, #754 and #755 cancelled"

    run = as_json(calsync(incident, "remediate", "--reason", "incident", "--json"))
    assert run["before"]["health"]["failed"] == 23
    assert run["after"]["health"]["failed"] == 2, "only the host conflict is left failing"
    assert len(run["changes"]["placeholder_emails"]) == 33
    assert {c["row_id"] for c in run["changes"]["invalid"]} == {15, 740}
    again = as_json(calsync(incident, "remediate", "--json"))
    assert all(not rows for rows in again["changes"].values()), "a second run changes nothing"

    undo = calsync(incident, "remediate", "--undo", run["run_id"])
    assert undo.returncode == 0, undo.stderr
    assert as_json(calsync(incident, "status", "--json"))["failed"] == 23, "undo restores the incident's state"


def test_markdown_report_has_before_and_after(incident: Db, tmp_path: Path) -> None:
    assert calsync(incident, "remediate", "--reason", "incident").returncode == 0
    out = tmp_path / "report.md"
    assert calsync(incident, "report", "--markdown", str(out)).returncode == 0
    text = out.read_text()
    assert "## Results Summary" in text and "| Total Failed | 23 | 2 |" in text
    assert "### HOST_UNAVAILABLE (2)" in text


def test_demo_end_state(fresh_db: Db) -> None:
    from worker.devtools import demo

    result = demo.replay(fresh_db.url, rate_limit=100_000)
    assert result["before"]["health"]["failed"] == 23
    assert result["left"] == {"HOST_UNAVAILABLE": [750, 751]}, "only the business's host conflicts remain"
    failing = result["after"]["failures"]["HOST_UNAVAILABLE"]
    assert all("reschedule" in f["recommended_action"].lower() for f in failing)
    assert result["after"]["health"]["critical_alerts"] == 0
    assert result["webhook"]["moved"] and result["webhook"]["echoed"] == 0, "a reschedule at Cal.com moved it"


def test_undo_refuses_a_change_it_cannot_revert(db: Db) -> None:
    """remediation.undo once marked a logged change it did not know as undone without reverting it (a reconcile
    repair's calcom_bookings entry): now the whole undo stops, names the change and the function that can."""
    with db.connect() as conn:
        run = conn.execute(
            "INSERT INTO remediation.log (run_id, step, operator, table_name, row_id, action, after) "
            "VALUES (gen_random_uuid(), 'reconcile', 'test', 'calcom_bookings', 7, 'update', '{}') RETURNING run_id"
        ).fetchone()[0]  # type: ignore[index]
        conn.commit()
        with pytest.raises(psycopg.errors.RaiseException) as e:
            conn.execute("SELECT * FROM remediation.undo(%s)", [run])
        assert "cannot revert (update of calcom_bookings row 7)" in str(e.value)
        assert e.value.diag.message_hint is not None and "undo_reconcile" in e.value.diag.message_hint
        conn.rollback()
        undone = conn.execute("SELECT undone_by FROM remediation.log WHERE run_id = %s", [run]).fetchall()
    assert undone == [(None,)], "nothing is marked undone"
