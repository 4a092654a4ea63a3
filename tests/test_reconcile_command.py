"""`calsync reconcile` against the real simulator process and a real database: a planted data set of orphans at
Cal.com (with and without our metadata), orphans here (cancelled outside, cancelled by calsync, unknown at Cal.com)
and drift (outside reschedules, one the integrity rules refuse; a move here that never reached Cal.com) is found
exactly, a dry run records nothing, --repair fixes ours and leaves the rest listed, and the undo restores our rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Db
from tests.worker_support import API_KEY, FUTURE, active, book, drain, meta, outbox_left, salon, sim, simulator
from worker.devtools.simulator import SimulatorProcess
from worker.resources import ROOT

__all__ = ["salon", "sim", "simulator"]  # fixtures

# what the planted set must give: (kind, repair) per planted case
PLANTED = {
    "foreign": ("orphan_at_calcom", "person"),
    "unknown_appointment": ("orphan_at_calcom", "cancel_at_calcom"),
    "second_booking": ("orphan_at_calcom", "cancel_at_calcom"),
    "lost_answer": ("orphan_at_calcom", "requeue"),
    "cancelled_by_attendee": ("orphan_here", "person"),
    "cancelled_by_calsync": ("orphan_here", "requeue"),
    "unknown_at_calcom": ("orphan_here", "requeue"),
    "moved_by_attendee": ("drift", "apply_reschedule"),
    "moved_onto_busy_host": ("drift", "apply_reschedule"),
    "moved_here_only": ("drift", "requeue"),
}


def reconcile(db: Db, sim: SimulatorProcess, *args: str) -> tuple[int, dict[str, Any], str]:
    """`calsync reconcile --json …` as a real process: (exit code, its JSON, stderr)."""
    env = {
        **os.environ,
        "CALCOM_API_KEY": API_KEY,
        "CALSYNC_DATABASE_URL": db.url,
        "CALCOM_BASE_URL": sim.base_url,
        "CALSYNC_RECONCILE_RATE_LIMIT": "100000",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "reconcile", "--json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr


def api(sim: SimulatorProcess, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = httpx.request(
        method,
        sim.v2_url + path,
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}", "cal-api-version": "2024-08-13"},
        timeout=10,
    )
    assert r.status_code < 300, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def create_at_calcom(
    sim: SimulatorProcess, start: dt.datetime, metadata: dict[str, str] | None, email: str = "walk.in@mail.example"
) -> str:
    body: dict[str, Any] = {
        "start": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "eventTypeId": 8001,
        "attendee": {"name": "Walk In", "email": email, "timeZone": "Europe/Berlin"},
    }
    if metadata is not None:
        body["metadata"] = metadata
    return str(api(sim, "POST", "/bookings", body)["uid"])


def sql(db: Db, statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        rows = cur.fetchall() if cur.description else []
        conn.commit()
    return rows


def as_worker(db: Db, *statements: tuple[str, list[Any]]) -> None:
    """Statements in one transaction that enqueues nothing (calsync.writer = worker): changes Cal.com never hears of."""
    with db.connect() as conn:
        conn.execute("SELECT set_config('calsync.writer', 'worker', true)")
        for statement, params in statements:
            conn.execute(statement, params)  # type: ignore[arg-type]
        conn.commit()


def uid_of(db: Db, appointment_id: int) -> str:
    return str(sql(db, "SELECT calcom_v2_booking_uid FROM appointments WHERE id = %s", [appointment_id])[0][0])


FINGERPRINT = """
SELECT md5(concat_ws('|',
    (SELECT string_agg(concat_ws(',', id, status, starts_at, ends_at, calcom_sync_status, calcom_booking_id,
                                 calcom_v2_booking_id, calcom_v2_booking_uid), ';' ORDER BY id) FROM appointments),
    (SELECT string_agg(to_jsonb(s)::text, ';' ORDER BY appointment_id, slot) FROM calsync.synced_bookings s),
    (SELECT string_agg(concat_ws(',', id, repair, detail, resolved_at, resolution), ';' ORDER BY id)
     FROM calsync.reconcile_findings),
    (SELECT string_agg(id::text, ';' ORDER BY id) FROM calsync.outbox)))
"""


def plant(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> dict[str, Any]:
    """Twelve synced appointments, then one planted case each (one untouched, one moved with its event pending)."""
    day = dt.timedelta(days=1)
    ids = [book(db, salon, start=FUTURE + i * day) for i in range(1, 13)]
    drain(db, sim)
    a = dict(zip(PLANTED, ids, strict=False))
    untouched, unsettled = ids[10], ids[11]
    uids = {name: uid_of(db, i) for name, i in a.items() if i != untouched}
    found: dict[str, str] = {}  # planted case -> the uid its finding must name

    found["foreign"] = create_at_calcom(sim, FUTURE + 20 * day, None)
    found["unknown_appointment"] = create_at_calcom(sim, FUTURE + 21 * day, {"calsync_appointment_id": "999999"})
    found["second_booking"] = create_at_calcom(
        sim, FUTURE + 22 * day, {"calsync_appointment_id": str(a["second_booking"])}
    )
    # a booking the worker made but never recorded (its reply was lost): our rows forget it, Cal.com keeps it
    found["lost_answer"] = uids["lost_answer"]
    as_worker(
        db,
        ("DELETE FROM calsync.synced_bookings WHERE appointment_id = %s", [a["lost_answer"]]),
        (
            "UPDATE appointments SET calcom_v2_booking_uid = NULL, calcom_v2_booking_id = NULL, "
            "calcom_booking_id = NULL WHERE id = %s",
            [a["lost_answer"]],
        ),
    )
    sim.cancel_as(uids["cancelled_by_attendee"], by="attendee", reason="kann nicht")
    found["cancelled_by_attendee"] = uids["cancelled_by_attendee"]
    api(
        sim,
        "POST",
        f"/bookings/{uids['cancelled_by_calsync']}/cancel",
        {"cancellationReason": f"Cancelled in the salon system (appointment #{a['cancelled_by_calsync']})"},
    )
    found["cancelled_by_calsync"] = uids["cancelled_by_calsync"]
    # Cal.com lost it: its booking there is gone (cancelled), and what we hold is a uid Cal.com never had
    sim.cancel_as(uids["unknown_at_calcom"], by="host", reason="cleanup")
    lost = "lostuid0000000000000001"
    as_worker(
        db,
        ("UPDATE calsync.synced_bookings SET uid = %s WHERE appointment_id = %s", [lost, a["unknown_at_calcom"]]),
        ("UPDATE appointments SET calcom_v2_booking_uid = %s WHERE id = %s", [lost, a["unknown_at_calcom"]]),
    )
    found["unknown_at_calcom"] = lost
    sim.reschedule_as(uids["moved_by_attendee"], (FUTURE + 23 * day).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    found["moved_by_attendee"] = uids["moved_by_attendee"]
    # the host moves a booking onto a time the host is busy here (an appointment in progress, never synced)
    busy = FUTURE + 24 * day
    other = sql(
        db, "SELECT tests.make_customer(%s, 'Eva Roth', 'eva.roth@mail.example', '+4915199999999')", [salon["company"]]
    )[0][0]
    sql(db, "SELECT tests.make_appointment(%s, %s, %s, %s, 'in_progress')", [other, salon["cut"], salon["lena"], busy])
    sim.reschedule_as(uids["moved_onto_busy_host"], busy.strftime("%Y-%m-%dT%H:%M:%S.000Z"), by="host", reason="x")
    found["moved_onto_busy_host"] = uids["moved_onto_busy_host"]
    # moved here without an event (so Cal.com never heard of it)
    as_worker(
        db,
        (
            "UPDATE appointments SET starts_at = starts_at + interval '2 hours', "
            "ends_at = ends_at + interval '2 hours' WHERE id = %s",
            [a["moved_here_only"]],
        ),
    )
    found["moved_here_only"] = uids["moved_here_only"]
    # moved here, its event still in the outbox (the worker is on it): left out
    sql(
        db,
        "UPDATE appointments SET starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour' "
        "WHERE id = %s",
        [unsettled],
    )
    return {"appointments": a, "found": found, "untouched": untouched, "unsettled": unsettled}


def by_uid(findings: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {f["uid"]: (f["kind"], f["repair"]) for f in findings}


def test_reconcile_finds_and_repairs_planted_orphans_and_drift(
    db: Db, sim: SimulatorProcess, salon: dict[str, Any]
) -> None:
    planted = plant(db, sim, salon)
    a, found = planted["appointments"], planted["found"]
    want = {found[name]: PLANTED[name] for name in PLANTED}
    recorded_before = sql(
        db, "SELECT (SELECT count(*) FROM calsync.reconcile_findings), (SELECT count(*) FROM remediation.log)"
    )

    # a dry run finds them and records nothing
    code, dry, _ = reconcile(db, sim, "--dry-run")
    assert code == 1 and dry["dry_run"]
    assert by_uid(dry["findings"]) == want
    assert all(f["id"] is None and f["is_new"] for f in dry["findings"])
    assert (
        sql(db, "SELECT (SELECT count(*) FROM calsync.reconcile_findings), (SELECT count(*) FROM remediation.log)")
        == recorded_before
    )
    assert dry["unsettled"] == 1

    # recorded: exactly what was planted (found vs planted), listed in the remediation view
    code, run, _ = reconcile(db, sim)
    assert code == 1
    assert by_uid(run["findings"]) == want, "found vs planted"
    assert run["by_kind"] == {"orphan_at_calcom": 4, "orphan_here": 3, "drift": 3}
    view = sql(db, "SELECT uid, kind, repair, recommended_action FROM remediation.reconcile_findings")
    assert {r[0]: (r[1], r[2]) for r in view} == want
    assert all(r[3] for r in view)
    code, again, _ = reconcile(db, sim)  # seen again: the same findings, none new
    assert {f["id"] for f in again["findings"]} == {f["id"] for f in run["findings"]}
    assert not any(f["is_new"] for f in again["findings"])

    # repaired: ours fixed, the refused reschedule and the others left for a person
    before = sql(db, FINGERPRINT)
    code, rep, _ = reconcile(db, sim, "--repair", "--reason", "test")
    assert code == 1 and rep["open_after"] == 3
    runs = "SELECT steps, before ? 'health', after->'reconcile' FROM remediation.runs WHERE run_id = %s"
    assert sql(db, runs, [rep["run_id"]]) == [(["reconcile", "repair"], True, rep["by_kind"])]
    assert {c["uid"] for c in rep["cancelled_at_calcom"]} == {found["unknown_appointment"], found["second_booking"]}
    open_now = {r[0]: r[1] for r in sql(db, "SELECT uid, repair FROM remediation.reconcile_findings")}
    assert open_now == {
        found["foreign"]: "person",
        found["cancelled_by_attendee"]: "person",
        found["moved_onto_busy_host"]: "person",
    }
    refused = sql(
        db, "SELECT detail FROM remediation.reconcile_findings WHERE uid = %s", [found["moved_onto_busy_host"]]
    )
    assert "host_busy_time_no_overlap" in refused[0][0]
    moved = sim.bookings(uid=found["moved_by_attendee"])[0]["rescheduledToUid"]
    assert uid_of(db, a["moved_by_attendee"]) == moved, "the outside reschedule is applied: the successor is ours"
    assert sql(
        db,
        "SELECT starts_at = %s FROM appointments WHERE id = %s",
        [FUTURE + dt.timedelta(days=23), a["moved_by_attendee"]],
    ) == [(True,)]
    for uid in (found["unknown_appointment"], found["second_booking"]):
        assert sim.bookings(uid=uid)[0]["status"] == "cancelled"
    assert sim.bookings(uid=found["foreign"])[0]["status"] == "accepted", "a foreign booking is not ours to cancel"

    # undone: our rows exactly as before the repair (Cal.com's cancellations stay)
    changes = json.loads(
        subprocess.run(
            [sys.executable, "-m", "worker", "reconcile", "--json", "--undo", rep["run_id"], "--database-url", db.url],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout
    )
    assert any(c["table_name"] == "calcom_bookings" for c in changes)
    assert sql(db, FINGERPRINT) == before

    # repaired again, the worker drains, and a reconciliation finds only what is a person's
    code, rep2, _ = reconcile(db, sim, "--repair")
    assert rep2["open_after"] == 3
    drain(db, sim)
    code, last, _ = reconcile(db, sim)
    assert by_uid(last["findings"]) == {
        found["foreign"]: ("orphan_at_calcom", "person"),
        found["cancelled_by_attendee"]: ("orphan_here", "person"),
        found["moved_onto_busy_host"]: ("drift", "person"),
    }
    for name in ("lost_answer", "cancelled_by_calsync", "unknown_at_calcom", "moved_here_only", "second_booking"):
        live = active(meta(sim, a[name]))
        assert len(live) == 1, f"{name}: exactly one live booking at Cal.com"
        assert live[0]["uid"] == uid_of(db, a[name]), f"{name}: and it is the one recorded"
        row = sql(db, "SELECT starts_at, ends_at FROM appointments WHERE id = %s", [a[name]])[0]
        assert (dt.datetime.fromisoformat(live[0]["start"]), dt.datetime.fromisoformat(live[0]["end"])) == row
    matching = len(set(want.items()) & set(by_uid(run["findings"]).items()))
    print(
        f"\nplanted {len(PLANTED)}: found {len(run['findings'])} (matching {matching})"
        f", repaired {len(PLANTED) - rep['open_after']} (cancelled at Cal.com {len(rep['cancelled_at_calcom'])}),"
        f" left for a person {rep['open_after']}; after the worker: {len(last['findings'])} open"
    )


def test_recording_function_keeps_findings_and_resolves_settled_ones(db: Db, salon: dict[str, Any]) -> None:
    """remediation.reconcile_bookings at SQL level: a dry run records nothing, a run records, a second run sees the
    same finding again, and a finding not found again is resolved, never deleted."""
    start = FUTURE + dt.timedelta(days=3)
    foreign = {
        "uid": "foreignuid00000000000001",
        "booking_id": 1,
        "event_type_id": 8001,
        "status": "accepted",
        "start_at": start.isoformat(),
        "end_at": (start + dt.timedelta(minutes=30)).isoformat(),
        "metadata_appointment": None,
        "metadata_phase": None,
        "rescheduled_to_uid": None,
        "rescheduled_from_uid": None,
        "cancellation_reason": None,
        "found": True,
    }
    call = "SELECT kind, repair, id IS NULL FROM remediation.reconcile_bookings(%s, %s::jsonb, now(), NULL, %s)"
    run1, run2, run3 = (
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
    )
    assert sql(db, call, [run1, json.dumps([foreign]), True]) == [("orphan_at_calcom", "person", True)]
    assert sql(db, "SELECT count(*) FROM calsync.reconcile_findings") == [(0,)]
    assert sql(db, call, [run1, json.dumps([foreign]), False]) == [("orphan_at_calcom", "person", False)]
    assert sql(db, call, [run2, json.dumps([foreign]), False]) == [("orphan_at_calcom", "person", False)]
    assert sql(db, "SELECT count(*), min(found_by::text), max(last_seen_by::text) FROM calsync.reconcile_findings") == [
        (1, run1, run2)
    ]
    assert sql(db, call, [run3, "[]", False]) == []
    assert sql(db, "SELECT resolution FROM calsync.reconcile_findings") == [
        (f"not found again by reconcile run {run3}",)
    ]
    assert sql(db, "SELECT count(*) FROM remediation.reconcile_findings") == [(0,)]


def test_errors_are_one_line(db: Db, sim: SimulatorProcess) -> None:
    env = {
        **os.environ,
        "CALCOM_API_KEY": "cal_test_wrong",
        "CALSYNC_DATABASE_URL": db.url,
        "CALCOM_BASE_URL": sim.base_url,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "reconcile"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert (
        proc.stderr.count("\n") == 1
        and "Cal.com could not be read" in proc.stderr
        and "nothing was recorded" in proc.stderr
    )
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "reconcile", "--since", "tomorrow"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_timer_and_service_verify() -> None:
    service = (ROOT / "deploy" / "calsync-reconcile.service").read_text()
    timer = (ROOT / "deploy" / "calsync-reconcile.timer").read_text()
    for needed in (
        "Type=oneshot",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "LoadCredential=calcom_api_key",
        "User=calsync",
        "calsync reconcile",
    ):
        assert needed in service
    for needed in ("OnCalendar=daily", "Persistent=true", "Unit=calsync-reconcile.service"):
        assert needed in timer
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "calsync-reconcile.service").write_text(
            service.replace("/opt/calsync/.venv/bin/calsync", str(ROOT / ".venv" / "bin" / "calsync"))
        )
        (Path(tmp) / "calsync-reconcile.timer").write_text(timer)
        proc = subprocess.run(
            [
                "systemd-analyze",
                "verify",
                str(Path(tmp) / "calsync-reconcile.timer"),
                str(Path(tmp) / "calsync-reconcile.service"),
            ],
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 0, proc.stderr


def test_phases_of_a_composite_are_reconciled_one_by_one(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    """A perm's phases have a booking each: one lost (cancelled by calsync) is booked again, one moved by the host
    is a person's (one phase cannot move alone)."""
    perm = book(db, salon, service="perm", start=FUTURE + dt.timedelta(days=2))
    drain(db, sim)
    phases = sql(
        db,
        "SELECT id, calcom_booking_uid FROM appointment_phases WHERE appointment_id = %s AND staff_required ORDER BY "
        "sequence_order",
        [perm],
    )
    assert len(phases) == 4 and all(uid for _, uid in phases)
    (lost_phase, lost_uid), (moved_phase, moved_uid) = phases[0], phases[3]
    api(
        sim,
        "POST",
        f"/bookings/{lost_uid}/cancel",
        {"cancellationReason": f"Cancelled in the salon system (appointment #{perm})"},
    )
    later = (FUTURE + dt.timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    sim.reschedule_as(moved_uid, later, by="host", reason="Urlaub")
    ours = (
        "SELECT p.calcom_booking_uid, p.calcom_sync_status, to_jsonb(s)::text FROM appointment_phases p "
        "LEFT JOIN calsync.synced_bookings s ON s.slot = p.id WHERE p.appointment_id = %s ORDER BY p.id"
    )
    before = sql(db, ours, [perm])
    code, undone, _ = reconcile(db, sim, "--repair")
    assert sql(db, ours, [perm]) != before
    # `calsync remediate --undo` knows a reconcile run: the phase's booking and the worker's record come back
    subprocess.run(
        [sys.executable, "-m", "worker", "remediate", "--undo", undone["run_id"], "--database-url", db.url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert sql(db, ours, [perm]) == before and outbox_left(db) == 0
    code, run, _ = reconcile(db, sim, "--repair")
    assert code == 1
    assert {(f["uid"], f["slot"]): (f["kind"], f["repair"]) for f in run["findings"]} == {
        (lost_uid, lost_phase): ("orphan_here", "requeue"),
        (moved_uid, moved_phase): ("drift", "person"),
    }
    assert sql(
        db, "SELECT calcom_booking_uid, calcom_sync_status FROM appointment_phases WHERE id = %s", [lost_phase]
    ) == [(None, "pending")]
    drain(db, sim)
    new_uid = sql(db, "SELECT calcom_booking_uid FROM appointment_phases WHERE id = %s", [lost_phase])[0][0]
    assert new_uid not in (None, lost_uid)
    assert sim.bookings(uid=new_uid)[0]["status"] == "accepted"
    code, last, _ = reconcile(db, sim)
    assert by_uid(last["findings"]) == {moved_uid: ("drift", "person")}


def test_pages_are_keyed_by_time_and_bounded(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    """260 bookings of one event type are listed exactly once each over two pages; past a cap the command stops with
    one line and records nothing."""
    start = FUTURE + dt.timedelta(days=40)
    made = {create_at_calcom(sim, start + i * dt.timedelta(minutes=30), None) for i in range(260)}
    code, dry, _ = reconcile(db, sim, "--dry-run")
    assert code == 1 and dry["bookings_listed"] == 260
    assert {f["uid"] for f in dry["findings"]} == made
    for flag, cap in (
        ("--max-pages", "CALSYNC_RECONCILE_MAX_PAGES"),
        ("--max-bookings", "CALSYNC_RECONCILE_MAX_BOOKINGS"),
    ):
        env = {
            **os.environ,
            "CALCOM_API_KEY": API_KEY,
            "CALSYNC_DATABASE_URL": db.url,
            "CALCOM_BASE_URL": sim.base_url,
            "CALSYNC_RECONCILE_RATE_LIMIT": "100000",
        }
        proc = subprocess.run(
            [sys.executable, "-m", "worker", "reconcile", flag, "1"], capture_output=True, text=True, cwd=ROOT, env=env
        )
        assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
        assert cap in proc.stderr and "nothing was recorded" in proc.stderr
    assert sql(db, "SELECT count(*) FROM calsync.reconcile_findings") == [(0,)]
    # plain output: the table and the summary line
    env = {
        **os.environ,
        "CALCOM_API_KEY": API_KEY,
        "CALSYNC_DATABASE_URL": db.url,
        "CALCOM_BASE_URL": sim.base_url,
        "CALSYNC_RECONCILE_RATE_LIMIT": "100000",
    }
    out = subprocess.run(
        [sys.executable, "-m", "worker", "reconcile", "--dry-run"], capture_output=True, text=True, cwd=ROOT, env=env
    ).stdout.splitlines()
    assert out[0].split()[:2] == ["kind", "repair"] and len(out) == 262
    assert "260 bookings listed" in out[-1] and "orphan_at_calcom 260" in out[-1] and "dry run" in out[-1]


def test_a_lost_rebooking_is_adopted_not_cancelled(db: Db, sim: SimulatorProcess, salon: dict[str, Any]) -> None:
    """The worker cancelled its booking and booked again, and the second reply was lost: the recorded booking is
    cancelled (by calsync), the new one carries our metadata. The new one is adopted, not cancelled as a second."""
    start = FUTURE + dt.timedelta(days=4)
    appointment = book(db, salon, start=start)
    drain(db, sim)
    old = uid_of(db, appointment)
    reason = f"Cancelled in the salon system (appointment #{appointment})"
    api(sim, "POST", f"/bookings/{old}/cancel", {"cancellationReason": reason})
    # as the worker made it: the customer's e-mail (its lookup lists by it) and our metadata
    new = create_at_calcom(sim, start, {"calsync_appointment_id": str(appointment)}, "hans.schuster@mail.example")
    code, run, _ = reconcile(db, sim, "--repair")
    assert by_uid(run["findings"]) == {old: ("orphan_here", "requeue"), new: ("orphan_at_calcom", "requeue")}
    assert run["cancelled_at_calcom"] == [] and run["open_after"] == 0 and code == 0
    drain(db, sim)
    assert [b["uid"] for b in active(meta(sim, appointment))] == [new] and uid_of(db, appointment) == new
    code, last, _ = reconcile(db, sim)
    assert code == 0 and last["findings"] == []
