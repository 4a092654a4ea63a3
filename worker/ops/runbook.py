"""`calsync remediate`: the runbook's SQL functions as one audited run, with a before/after summary.

Each step is a ``remediation.*`` function (dry run by default in SQL). A run gets one run id; its changes
are logged in remediation.log with before and after images, and remediation.runs keeps the dashboard and
the error distribution before and after. ``--undo RUN_ID`` reverts a run from its log.
"""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from worker.db import connect, query

# step name -> (function, what it fixes); in the order a run applies them
STEPS: dict[str, tuple[str, str]] = {
    "placeholder_emails": (
        "remediation.backfill_placeholder_emails",
        "customers without contact get a placeholder e-mail",
    ),
    "missing_phases": ("remediation.create_missing_phases", "composite appointments get their phases"),
    "broken_phases": ("remediation.repair_broken_phases", "invalid phases are superseded and derived again"),
    "duplicates": ("remediation.resolve_duplicate_bookings", "duplicates cancelled, the booked one kept"),
    "invalid": ("remediation.cancel_invalid_appointments", "appointments without service or staff cancelled"),
    "past": ("remediation.resolve_past_unsynced", "past appointments that never synced resolved"),
    "host_conflicts": ("remediation.flag_host_conflicts", "double-booked hosts flagged for a reschedule"),
    "requeue": ("remediation.requeue_failures", "fixed failures queued for the worker"),
}
BATCH = 500


@dataclass
class RunResult:
    run_id: str
    dry_run: bool
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, Counter[str]]:
        return {step: Counter(f"{c['table_name']} {c['action']}" for c in rows) for step, rows in self.changes.items()}


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    health = cur.execute(query("remediation_health").encode()).fetchone() or {}
    distribution = cur.execute(query("remediation_distribution").encode()).fetchall()
    return {"health": dict(health), "distribution": [dict(r) for r in distribution]}


def _call(conn: psycopg.Connection[Any], function: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    named = ", ".join(f"{k} => %({k})s" for k in args)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(f"SELECT * FROM {function}({named})".encode(), args).fetchall()  # noqa: S608 (STEPS names)
    return [dict(r) for r in rows]


def _progress(step: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r  {step:<18} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def run(
    url: str,
    steps: list[str] | None = None,
    *,
    dry_run: bool = False,
    reason: str | None = None,
    past_mode: str = "historical",
    categories: list[str] | None = None,
    operator: str | None = None,
) -> RunResult:
    chosen = steps or list(STEPS)
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; steps are: {', '.join(STEPS)}")
    result = RunResult(str(uuid.uuid4()), dry_run)
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('calsync.operator', %s, false)", [operator or getpass.getuser()])
        result.before = snapshot(conn)
        conn.execute(
            query("remediation_run_start").encode(),
            {
                "run_id": result.run_id,
                "reason": reason,
                "steps": chosen,
                "dry_run": dry_run,
                "before": json.dumps(result.before, default=str),
            },
        )
        for step in [s for s in STEPS if s in chosen]:
            function = STEPS[step][0]
            args: dict[str, Any] = {"p_dry_run": True, "p_reason": reason, "p_run_id": result.run_id}
            if step == "past":
                args["p_mode"] = past_mode
            if step == "requeue" and categories:
                args["p_categories"] = categories
            planned = _call(conn, function, args)
            if dry_run:
                result.changes[step] = planned
                continue
            total = len({(c["table_name"], c["row_id"]) for c in planned})
            done: list[dict[str, Any]] = []
            while True:
                batch = _call(conn, function, {**args, "p_dry_run": False, "p_limit": BATCH})
                if not batch:
                    break
                done += batch
                if total > BATCH:
                    _progress(step, min(total, len({(c["table_name"], c["row_id"]) for c in done})), total)
            if total > BATCH:
                sys.stderr.write("\n")
            result.changes[step] = done
        result.after = snapshot(conn)
        conn.execute(
            query("remediation_run_finish").encode(),
            {"run_id": result.run_id, "after": json.dumps(result.after, default=str)},
        )
    return result


def undo(url: str, run_id: str, reason: str | None = None, operator: str | None = None) -> list[dict[str, Any]]:
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('calsync.operator', %s, false)", [operator or getpass.getuser()])
        with conn.transaction():
            # a reconcile run changed rows remediation.undo does not know: its own undo reverts them, then the rest
            row = conn.execute(query("reconcile_run_is_reconcile").encode(), {"run_id": run_id}).fetchone()
            function = "remediation.undo_reconcile" if row and row[0] else "remediation.undo"
            return _call(conn, function, {"p_run_id": run_id, "p_reason": reason})
