"""Text, JSON and Markdown renderings of the remediation views (`calsync status`, `report`, `remediate`)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import psycopg
from psycopg.rows import dict_row

from worker.db import connect, query
from worker.ops.runbook import STEPS, RunResult, snapshot


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |", line]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells[1:]]
    return "\n".join([*out, line])


def status(url: str) -> dict[str, Any]:
    """The dashboard, with the figures per company and the shared rate limit of each key (``keys``)."""
    with connect(url) as conn:
        health: dict[str, Any] = snapshot(conn)["health"]
        health["companies"] = health["keys"] = None
        cur = conn.cursor(row_factory=dict_row)
        try:  # revision 0023 and later
            row = cur.execute(query("remediation_health_by_company").encode()).fetchone()
            health["companies"] = row["companies"] if row else None
            health["keys"] = [dict(r) for r in cur.execute(query("rate_limit_stats").encode()).fetchall()]
        except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedFunction, psycopg.errors.InsufficientPrivilege):
            conn.rollback()  # an older database, or a session that may read the dashboard only
    return health


def render_status(h: dict[str, Any]) -> str:
    rate = "n/a" if h.get("success_rate_24h") is None else f"{h['success_rate_24h']} %"
    lines = [
        f"Sync Health: {h['health']}",
        f"Success Rate (24h): {rate} of {h['attempted_24h']} attempted",
        f"Pending Sync: {h['pending']}   Stale (>1h): {h['stale_pending']}",
        f"Failed Sync: {h['failed']}   Ancient (>24h): {h['ancient_failures']}",
        f"Manual Review: {h['manual_review']}",
        f"Dead Events: {h['dead_events']}   Open Integrity Issues: {h['integrity_issues']}",
        f"Active Alerts: {len(h['alerts'])} ({h['critical_alerts']} critical)",
    ]
    lines += [f"  [{a['severity']}] {a['message']}" for a in h["alerts"]]
    problems = {a.get("key_ref"): a["alert"] for a in h["alerts"] if a.get("key_ref")}
    keys = {k["key_ref"]: k for k in h.get("keys") or []}
    if companies := h.get("companies"):
        rows = []
        for c in companies:
            ref = f"company:{c['company_id']}" if c["company_id"] is not None else "-"
            k = keys.get(ref)
            waits = f"{k['delayed']} / {k['wait_s']:.0f} s" if k else ""
            rows.append(
                [
                    c["company_id"] if c["company_id"] is not None else "(none)",
                    c["outbox_depth"],
                    c["oldest_pending_s"] if c["oldest_pending_s"] is not None else "",
                    c["failed"],
                    c["dead_events"],
                    c["held"],
                    waits,
                    c.get("key_problem") or problems.get(ref, ""),
                ]
            )
        headers = ["company", "depth", "oldest s", "failed", "dead", "held", "rate waits (own key)", "key problem"]
        lines += ["", "Per company:", table(headers, rows)]
    if keys:
        rows = [
            [k["key_ref"], k["granted"], k["delayed"], f"{k['wait_s']:.1f}", k["pauses"], f"{k['paused_for_s']:.0f}"]
            for k in keys.values()
        ]
        headers = ["key", "slots granted", "waited", "wait s", "429 pauses", "paused for s"]
        lines += ["", "Rate limits (shared by every worker):", table(headers, rows)]
    return "\n".join(lines)


def report(url: str) -> dict[str, Any]:
    with connect(url) as conn:
        snap = snapshot(conn)
        cur = conn.cursor(row_factory=dict_row)
        failed = [dict(r) for r in cur.execute(query("remediation_failed").encode()).fetchall()]
        last = cur.execute(query("remediation_last_run").encode()).fetchone()
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in failed:
        by_category[f["category"]].append(f)
    return {
        "health": snap["health"],
        "distribution": snap["distribution"],
        "failures": dict(by_category),
        "last_run": dict(last) if last else None,
    }


def render_report(r: dict[str, Any]) -> str:
    total = sum(d["failures"] for d in r["distribution"])
    out = [render_status(r["health"]), "", "Error Distribution:"]
    dist = [[d["category"], d["failures"], f"{d['share_percent']} %"] for d in r["distribution"] if d["failures"]]
    out.append(table(["category", "failures", "share"], dist) if dist else "  (no failing syncs)")
    for category, rows in r["failures"].items():
        out += [
            "",
            f"{category} ({len(rows)} of {total}): {rows[0]['recommended_action']}"
            + (f"  [calsync remediate --only {rows[0]['runbook_step']}]" if rows[0]["runbook_step"] else ""),
        ]
        for f in rows:
            error = (f["last_error"] or "").replace("\n", " ")
            out.append(f"  #{f['appointment_id']} {f['starts_at']:%Y-%m-%d %H:%M} {f['customer_name']}: {error[:140]}")
    return "\n".join(out)


def _health_rows(before: dict[str, Any], after: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for label, key in (
        ("Total Failed", "failed"),
        ("Critical Alerts", "critical_alerts"),
        ("Manual Review Required", "manual_review"),
        ("Ancient Failures (>24h)", "ancient_failures"),
        ("Dead Events", "dead_events"),
        ("Open Integrity Issues", "integrity_issues"),
    ):
        b, a = before.get(key) or 0, after.get(key) or 0
        change = f"{a - b:+d}" + (f" ({(a - b) * 100 // b:+d} %)" if b else "")
        rows.append([label, b, a, change])
    rows.insert(0, ["Sync Health", before.get("health"), after.get("health"), ""])
    return rows


def render_run(result: RunResult) -> str:
    head = "DRY RUN: nothing was changed" if result.dry_run else f"run {result.run_id}"
    lines = [f"Remediation {head}", ""]
    for step, rows in result.changes.items():
        rows_touched = len({(c["table_name"], c["row_id"]) for c in rows})
        lines.append(f"  {step:<18} {rows_touched:>5} row(s)  {STEPS[step][1]}")
    lines += [
        "",
        "Results Summary:",
        table(["", "before", "after", "change"], _health_rows(result.before["health"], result.after["health"])),
    ]
    if not result.dry_run:
        lines.append(f"\nUndo with: calsync remediate --undo {result.run_id}")
    return "\n".join(lines)


def render_markdown(r: dict[str, Any]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    run = r["last_run"]
    md = [f"# Appointment Sync Remediation Report ({now})", ""]
    if run and run.get("before") and run.get("after"):
        before, after = run["before"], run["after"]
        md += [
            f"Run `{run['run_id']}` by {run['operator']} at {run['started_at']:%Y-%m-%d %H:%M}"
            + (f": {run['reason']}" if run["reason"] else ""),
            "",
            "## Results Summary",
            "",
            "| | Before | After | Change |",
            "|---|---|---|---|",
        ]
        md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _health_rows(before["health"], after["health"])]
        md += ["", "## Error Distribution", "", "| Category | Before | After |", "|---|---|---|"]
        after_counts = {d["category"]: d["failures"] for d in after["distribution"]}
        md += [
            f"| {d['category']} | {d['failures']} | {after_counts.get(d['category'], 0)} |"
            for d in before["distribution"]
            if d["failures"] or after_counts.get(d["category"])
        ]
    md += ["", "## Current State", "", "```", render_status(r["health"]), "```", "", "## Remaining Issues", ""]
    if not r["failures"]:
        md.append("None.")
    for category, rows in r["failures"].items():
        md += [f"### {category} ({len(rows)})", "", f"**Recommendation**: {rows[0]['recommended_action']}", ""]
        md += [
            f"- #{f['appointment_id']} ({f['starts_at']:%Y-%m-%d %H:%M}, {f['customer_name']}): "
            f"{(f['last_error'] or '').replace(chr(10), ' ')}"
            for f in rows
        ]
        md.append("")
    return "\n".join(md)
