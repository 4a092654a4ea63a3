"""The `calsync` command line.

Every option that names a resource can also be set by the environment variable shown in `--help`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from worker import __doc__ as package_doc

Handler = Callable[[argparse.Namespace], int]


def _env_default(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _add_db_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL [env CALSYNC_DATABASE_URL, then DATABASE_URL; default: the embedded server, "
        "started if needed]",
    )


# -- db -------------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from worker.devtools.embedded import EmbeddedError, EmbeddedPostgres

    emb = EmbeddedPostgres()
    try:
        if args.action == "start":
            st = emb.start()
            print(f"embedded PostgreSQL running on 127.0.0.1:{st.port} (data: {st.datadir})")
        elif args.action == "stop":
            print("stopped" if emb.stop() else "not running")
        elif args.action == "status":
            info = emb.describe()
            if args.json:
                print(json.dumps(info, indent=2))
            else:
                for k, v in info.items():
                    print(f"{k:12} {v}")
            return 0 if info["running"] else 3
        elif args.action == "url":
            state = emb.state()
            if state is None:
                print(
                    "calsync: the embedded database was never started; run `calsync db start`",
                    file=sys.stderr,
                )
                return 1
            print(state.url)
        elif args.action == "reset":
            emb.destroy()
            print("embedded database stopped and its data deleted")
    except EmbeddedError as e:
        print(f"calsync: {e}", file=sys.stderr)
        return 1
    return 0


# -- migrate / adopt --------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops import migrate

    if args.preflight:
        from worker.ops import preflight

        findings = preflight.run(resolve_url(args.database_url))
        if args.json:
            print(json.dumps([f.as_dict() for f in findings], indent=2))
        else:
            print(preflight.render(findings))
        return 1 if any(f.violations for f in findings) else 0
    if args.sql:
        url = args.database_url or os.environ.get("CALSYNC_DATABASE_URL") or "postgresql://offline/calsync"
        migrate.upgrade(url, args.target, sql=True)
        return 0
    url = resolve_url(args.database_url)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    alembic_log = logging.getLogger("alembic.runtime.migration")
    alembic_log.addHandler(handler)
    alembic_log.setLevel(logging.INFO)
    try:
        migrate.upgrade(url, args.target)
    except Exception as e:  # a pre-flight refusal or a lock give-up: print the report, not a traceback
        orig = getattr(e, "orig", None)
        diag = getattr(orig, "diag", None)
        if diag is not None and getattr(orig, "sqlstate", None) == "CS001":
            print(f"calsync migrate: {diag.message_primary}", file=sys.stderr)
            print(f"  {diag.message_detail}", file=sys.stderr)
            print("  " + (diag.message_hint or "").replace("\n", "\n  "), file=sys.stderr)
            print(f"database left at {sorted(migrate.current_heads(url))}", file=sys.stderr)
            return 2
        raise
    print(f"database at {sorted(migrate.current_heads(url))}")
    return 0


def cmd_adopt(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops.adopt import AdoptRefused, adopt

    try:
        adopt(resolve_url(args.database_url))
    except AdoptRefused as e:
        print(f"calsync adopt: refused: {e}", file=sys.stderr)
        return 1
    print("stamped revision 0001; now run `calsync migrate`")
    return 0


# -- generate / demo --------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    import datetime as dt

    from worker.db import resolve_url
    from worker.devtools import datagen

    params = datagen.Params(
        salons=args.scale,
        appointments_per_salon=args.appointments_per_salon,
        anchor=dt.date.fromisoformat(args.anchor) if args.anchor else None,
        seed=args.seed,
    )
    timings = datagen.run(resolve_url(args.database_url), params)
    total = sum(timings.values())
    for step, secs in timings.items():
        print(f"{step:24} {secs:8.2f} s")
    print(f"{'total':24} {total:8.2f} s  ({args.scale * args.appointments_per_salon:,} appointments)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from worker.devtools import demo

    return demo.run(args)


def cmd_worker(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops.migrate import NotAtHead
    from worker.sync import drain as outbox
    from worker.sync import settings

    try:
        cfg = settings.from_args(args, resolve_url(args.database_url))
        return outbox.run(cfg)
    except NotAtHead as e:
        print(f"calsync worker: refusing to start: {e}", file=sys.stderr)
        return 2


def cmd_simulator(args: argparse.Namespace) -> int:
    from worker.devtools.simulator import config, server

    server.run(config.config_from_args(args))
    return 0


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, default=str)


def cmd_status(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops import report

    h = report.status(resolve_url(args.database_url))
    print(_dump(h) if args.json else report.render_status(h))
    return {"HEALTHY": 0, "DEGRADED": 1}.get(str(h["health"]), 2)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from worker.db import resolve_url
    from worker.ops import report

    r = report.report(resolve_url(args.database_url))
    if args.markdown:
        Path(args.markdown).write_text(report.render_markdown(r))
        print(f"report written to {args.markdown}")
    elif args.json:
        print(_dump(r))
    else:
        print(report.render_report(r))
    return 0


def cmd_remediate(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops import report
    from worker.ops import runbook as remediation

    url = resolve_url(args.database_url)
    if args.undo:
        changes = remediation.undo(url, args.undo, args.reason)
        if args.json:
            print(_dump(changes))
        else:
            print(f"undid run {args.undo}: {len(changes)} change(s) reverted")
        return 0
    try:
        result = remediation.run(
            url, args.only, dry_run=args.dry_run, reason=args.reason, past_mode=args.past, categories=args.category
        )
    except ValueError as e:
        print(f"calsync remediate: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(
            _dump(
                {
                    "run_id": result.run_id,
                    "dry_run": result.dry_run,
                    "changes": result.changes,
                    "before": result.before,
                    "after": result.after,
                }
            )
        )
    else:
        print(report.render_run(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calsync", description=package_doc)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("db", help="the embedded PostgreSQL server (data under ./.calsync, env CALSYNC_HOME)")
    p.add_argument("action", choices=["start", "stop", "status", "url", "reset"])
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.set_defaults(handler=cmd_db)

    p = sub.add_parser("migrate", help="apply the migrations (alembic upgrade heads)")
    _add_db_url(p)
    p.add_argument("--target", default="heads", help="revision to upgrade to (default: heads)")
    p.add_argument("--sql", action="store_true", help="print the SQL instead of running it (offline mode)")
    p.add_argument(
        "--preflight",
        action="store_true",
        help="only report the rows the pending revisions' rules would refuse (exit 1 if any); changes nothing",
    )
    p.add_argument("--json", action="store_true", help="with --preflight: JSON output")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("adopt", help="check an existing app database against revision 0001 and stamp it")
    _add_db_url(p)
    p.set_defaults(handler=cmd_adopt)

    p = sub.add_parser("generate", help="load deterministic demo/benchmark data into an empty database")
    _add_db_url(p)
    p.add_argument("--scale", type=int, default=1, help="number of salons (1,000 appointments each by default)")
    p.add_argument("--appointments-per-salon", type=int, default=1000)
    p.add_argument("--anchor", default=None, help="the 'today' of the data, YYYY-MM-DD (default: today)")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(handler=cmd_generate)

    from worker.sync import settings

    p = sub.add_parser("worker", help="drain the outbox to Cal.com (run as a systemd service)")
    settings.add_arguments(p)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("simulator", help="a local Cal.com API v2 simulator (real HTTP server)")
    try:
        from worker.devtools.simulator import config as sim_config

        sim_config.add_arguments(p)
    except ImportError:  # pragma: no cover - the simulator ships with the package
        pass
    p.set_defaults(handler=cmd_simulator)

    p = sub.add_parser("status", help="the sync dashboard (exit 0 healthy, 1 degraded, 2 critical)")
    _add_db_url(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("report", help="failures by category with recommended actions")
    _add_db_url(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", metavar="FILE", help="write an incident-style report with before/after tables")
    p.set_defaults(handler=cmd_report)

    from worker.ops.runbook import STEPS

    p = sub.add_parser("remediate", help="run the audited runbook (see --only for the steps)")
    _add_db_url(p)
    p.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    p.add_argument("--only", nargs="+", metavar="STEP", choices=list(STEPS), help=f"steps: {', '.join(STEPS)}")
    p.add_argument("--reason", default=None, help="why (recorded with every change)")
    p.add_argument(
        "--past",
        choices=["historical", "cancel"],
        default="historical",
        help="past appointments that never synced: keep as history (default) or cancel",
    )
    p.add_argument("--category", nargs="+", help="requeue only failures of these categories")
    p.add_argument("--undo", metavar="RUN_ID", help="revert a run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remediate)

    p = sub.add_parser("demo", help="the end-to-end demo on the embedded database")
    p.add_argument("--keep", action="store_true", help="keep the existing demo database instead of resetting it")
    p.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
