"""`calsync migrate --preflight`: what the pending revisions' pre-flights would find, without changing anything.

Each rule revision lists its checks in a module attribute ``PREFLIGHT`` (see migrations/online.py). This
runs every check of every revision not yet applied, read-only, in one repeatable-read transaction, and
reports per rule how many rows break it, the first ids, and how to fix them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import psycopg

from worker.db import connect, query
from worker.ops import migrate


@dataclass(frozen=True)
class Finding:
    revision: str
    rule: str
    table: str
    description: str
    violations: int | None
    first_ids: list[int]
    fix: str
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def pending_revisions(url: str) -> list[str]:
    script = migrate.script()
    current = migrate.current_heads(url)
    pending = [r.revision for r in script.walk_revisions("base", "heads")]
    if current:
        applied: set[str] = set()
        for head in current:
            applied.update(r.revision for r in script.iterate_revisions(head, "base"))
        pending = [r for r in pending if r not in applied]
    return list(reversed(pending))


def run(url: str) -> list[Finding]:
    script = migrate.script()
    findings: list[Finding] = []
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        for rev in pending_revisions(url):
            for check in getattr(script.get_revision(rev).module, "PREFLIGHT", []):
                sql = query("preflight_count").replace("{violators}", check.violators)
                try:
                    with conn.transaction():
                        row = conn.execute(sql.encode()).fetchone()
                    count = int(cast(int, row[0])) if row else 0
                    first = [int(i) for i in cast(list[int], row[1] or [])] if row else []
                    error = None
                except psycopg.Error as e:
                    count, first, error = None, [], (e.diag.message_primary or str(e))
                findings.append(
                    Finding(
                        rev,
                        check.rule,
                        check.table,
                        check.description,
                        count,
                        first,
                        check.fix,
                        error,
                    )
                )
    return findings


def render(findings: list[Finding]) -> str:
    if not findings:
        return "pre-flight: no pending revision has checks (the database is at head)"
    lines = ["pre-flight of the pending revisions (nothing was changed):", ""]
    width = max(len(f.rule) for f in findings)
    for f in findings:
        if f.error:
            state = f"cannot check yet ({f.error})"
        elif f.violations:
            state = f"{f.violations} row(s) break it; first ids: {', '.join(map(str, f.first_ids))}"
        else:
            state = "ok"
        lines.append(f"  {f.revision}  {f.rule:<{width}}  {state}")
    bad = [f for f in findings if f.violations]
    if bad:
        lines += ["", "To fix before `calsync migrate` (or migrate with CALSYNC_PREFLIGHT=new-rows-only):"]
        for f in bad:
            lines.append(f"  - {f.rule} ({f.description}): {f.fix}")
    return "\n".join(lines)
