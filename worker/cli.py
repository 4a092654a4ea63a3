"""The `calsync` command line.

Every option that names a resource can also be set by the environment variable shown in `--help`. Errors are one
line on stderr with the exit codes listed in `worker.errors` (`--debug` or CALSYNC_DEBUG=1 adds the traceback);
`main` is the one place that reports them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from worker import __doc__ as package_doc
from worker.errors import CliError, Exit, debug_requested, report

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (exit 2) instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", Exit.USAGE, prog=self.prog)


def _arg(parse: Callable[[str], Any], expected: str | None = None) -> Callable[[str], Any]:
    """An argparse `type` from a parser that raises ValueError (the typed parsers of worker.sync.settings, or a
    function and what it expects): its error says what the flag takes."""
    expected = expected or str(getattr(parse, "expected", "valid"))

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}") from None

    convert.__name__ = expected
    return convert


def _run_id(text: str) -> str:
    return str(uuid.UUID(text))


def _add_db_url(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL [env CALSYNC_DATABASE_URL, then DATABASE_URL; default: the embedded server, "
        "started if needed]",
    )


# -- db -------------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from worker.devtools.embedded import EmbeddedPostgres

    emb = EmbeddedPostgres()
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
        return Exit.OK if info["running"] else Exit.DATABASE_UNREACHABLE
    elif args.action == "url":
        state = emb.state()
        if state is None:
            raise CliError("the embedded database was never started; run `calsync db start`")
        print(state.url)
    elif args.action == "reset":
        emb.destroy()
        print("embedded database stopped and its data deleted")
    return Exit.OK


# -- migrate / adopt --------------------------------------------------------------------------------
def _check_migration_settings() -> None:
    """The settings the revisions read themselves (migrations/online.py), checked before the first revision runs."""
    from worker.sync.settings import Choice, Duration, Integer, Setting

    for s in (
        Setting("lock_timeout", "CALSYNC_LOCK_TIMEOUT", Duration(), "", has_flag=False),
        Setting("statement_timeout", "CALSYNC_STATEMENT_TIMEOUT", Duration(), "", has_flag=False),
        Setting("lock_retries", "CALSYNC_LOCK_RETRIES", Integer(1), "", has_flag=False),
        Setting("batch_size", "CALSYNC_BATCH_SIZE", Integer(1), "", has_flag=False),
        Setting("preflight", "CALSYNC_PREFLIGHT", Choice(("refuse", "new-rows-only")), "", has_flag=False),
    ):
        s.read(None)


def cmd_migrate(args: argparse.Namespace) -> int:
    from worker.db import check_url, given_url, resolve_url
    from worker.ops import migrate

    _check_migration_settings()
    if args.preflight:
        from worker.ops import preflight

        findings = preflight.run(resolve_url(args.database_url))
        if args.json:
            print(json.dumps([f.as_dict() for f in findings], indent=2))
        else:
            print(preflight.render(findings))
        return Exit.FAILED if any(f.violations for f in findings) else Exit.OK
    if args.sql:  # offline: the URL only picks the dialect, nothing connects
        source, given = given_url(args.database_url)
        migrate.upgrade(check_url(given, source) if given else "postgresql://offline/calsync", args.target, sql=True)
        return Exit.OK
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
            return Exit.USAGE  # documented before the exit code table: the pre-flight refusal is 2
        raise
    print(f"database at {sorted(migrate.current_heads(url))}")
    return Exit.OK


def cmd_adopt(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops.adopt import AdoptRefused, adopt

    try:
        adopt(resolve_url(args.database_url))
    except AdoptRefused as e:
        print(f"calsync adopt: refused: {e}", file=sys.stderr)  # a report: each column that does not match
        return Exit.FAILED
    print("stamped revision 0001; now run `calsync migrate`")
    return Exit.OK


# -- generate / demo --------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.devtools import datagen

    params = datagen.Params(
        salons=args.scale,
        appointments_per_salon=args.appointments_per_salon,
        anchor=args.anchor,
        seed=args.seed,
    )
    timings = datagen.run(resolve_url(args.database_url), params)
    total = sum(timings.values())
    for step, secs in timings.items():
        print(f"{step:24} {secs:8.2f} s")
    print(f"{'total':24} {total:8.2f} s  ({args.scale * args.appointments_per_salon:,} appointments)")
    return Exit.OK


def cmd_demo(args: argparse.Namespace) -> int:
    from worker.devtools import demo

    return demo.run(args)


def cmd_worker(args: argparse.Namespace) -> int:
    """Start-up failures (a bad setting, the database unreachable or not at head: psycopg.OperationalError and
    NotAtHead from the head check and the pool's first connections) reach `main`'s handler as they are."""
    from worker.sync import settings

    cfg = settings.from_args(args)  # before the drain loop's imports: a bad setting fails fast
    from worker.sync import drain as outbox

    return outbox.run(cfg)


def cmd_webhooks(args: argparse.Namespace) -> int:
    from worker.webhooks import app
    from worker.webhooks import settings as webhook_settings

    return app.run(webhook_settings.from_args(args))


def cmd_simulator(args: argparse.Namespace) -> int:
    from worker.devtools.simulator import config, server

    try:
        cfg = config.config_from_args(args)
    except ValueError as e:  # the config's own checks (ports, rates that add up to more than 1)
        raise CliError(f"{e} (see `calsync simulator --help`)", Exit.USAGE) from None
    server.run(cfg)
    return Exit.OK


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, default=str)


def cmd_status(args: argparse.Namespace) -> int:
    from worker.db import resolve_url
    from worker.ops import report

    h = report.status(resolve_url(args.database_url))
    print(_dump(h) if args.json else report.render_status(h))
    return {"HEALTHY": Exit.OK, "DEGRADED": Exit.FAILED}.get(str(h["health"]), Exit.USAGE)  # 2: CRITICAL


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
    return Exit.OK


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
        return Exit.OK
    try:
        result = remediation.run(
            url, args.only, dry_run=args.dry_run, reason=args.reason, past_mode=args.past, categories=args.category
        )
    except ValueError as e:  # the runbook's own check of the steps asked for
        raise CliError(str(e), Exit.USAGE) from None
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
    return Exit.OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    from worker.ops import reconcile

    if args.undo:
        from worker.db import resolve_url

        changes = reconcile.undo(resolve_url(args.database_url), args.undo, args.reason)
        print(_dump(changes) if args.json else f"undid run {args.undo}: {len(changes)} change(s) reverted")
        return Exit.OK
    if args.until is not None and args.until <= (args.since or dt.datetime.now(dt.UTC)):
        raise CliError("--until must be after --since (see `calsync reconcile --help`)", Exit.USAGE)
    result = reconcile.run(reconcile.options(args, args.since, args.until))
    print(_dump(result.to_json()) if args.json else reconcile.render(result))
    return reconcile.exit_code(result)


_DEBUG_HELP = "on an error, print the traceback too [env CALSYNC_DEBUG=1]"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="calsync",
        description=package_doc,
        epilog="Exit codes: 0 ok, 1 failed (status: degraded), 2 usage or setting error (status: critical; migrate: "
        "refused by its pre-flight), 3 database unreachable (db status: not running), 4 database not at the "
        "revision this code needs, 130 interrupted.",
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

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
    from worker.sync import settings

    whole = _arg(settings.Integer(1))
    p.add_argument("--scale", type=whole, default=1, help="number of salons (1,000 appointments each by default)")
    p.add_argument("--appointments-per-salon", type=whole, default=1000)
    p.add_argument(
        "--anchor",
        type=_arg(dt.date.fromisoformat, "a date YYYY-MM-DD"),
        default=None,
        help="the 'today' of the data, YYYY-MM-DD (default: today)",
    )
    p.add_argument("--seed", type=_arg(int, "a whole number"), default=42)
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("worker", help="drain the outbox to Cal.com (run as a systemd service)")
    settings.add_arguments(p)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("webhooks", help="receive Cal.com's webhooks (POST /webhooks/calcom; run as a systemd service)")
    from worker.webhooks import settings as webhook_settings

    webhook_settings.add_arguments(p)
    p.set_defaults(handler=cmd_webhooks)

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
    p.add_argument("--undo", metavar="RUN_ID", type=_arg(_run_id, "a run id (a UUID)"), help="revert a run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remediate)

    from worker.ops import reconcile

    p = sub.add_parser("reconcile", help="compare Cal.com's bookings with what we synced; --repair fixes ours")
    _add_db_url(p)
    when = _arg(reconcile.parse_since, "an ISO-8601 date or time, or now")
    p.add_argument("--since", type=when, default=None, help="bookings starting from (default: now)")
    p.add_argument("--until", type=when, default=None, help="and before (default: no end)")
    p.add_argument("--dry-run", action="store_true", help="show the findings; record and change nothing")
    p.add_argument("--repair", action="store_true", help="fix what is ours to fix (audited; undo with --undo)")
    p.add_argument("--reason", default=None, help="why (recorded with every change)")
    p.add_argument("--undo", metavar="RUN_ID", type=_arg(_run_id, "a run id (a UUID)"), help="revert a repair run")
    p.add_argument("--json", action="store_true")
    reconcile.add_arguments(p)
    p.epilog = (
        "Exit 0: nothing open; 1: findings are open (after --repair: what it could not fix). The API key comes "
        "from CALCOM_API_KEY, CALCOM_API_KEY_FILE or the systemd credential calcom_api_key."
    )
    p.set_defaults(handler=cmd_reconcile)

    p = sub.add_parser("demo", help="the end-to-end demo on the embedded database")
    p.add_argument("--keep", action="store_true", help="keep the existing demo database instead of resetting it")
    p.set_defaults(handler=cmd_demo)
    for p in sub.choices.values():  # `calsync status --debug` works too (SUPPRESS: the global flag is not reset)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; whatever it raises becomes one line on stderr and an exit code (worker.errors.report)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = argparse.Namespace(command=next((a for a in argv if not a.startswith("-")), None), database_url=None)
    debug = False
    try:
        debug = debug_requested(argv)
        args = build_parser().parse_args(argv)
        handler: Handler = args.handler
        return handler(args)
    except (Exception, KeyboardInterrupt) as exc:
        from worker.db import describe

        prog = f"calsync {args.command}" if args.command else "calsync"
        return report(exc, prog=prog, database=describe(getattr(args, "database_url", None)), debug=debug)


if __name__ == "__main__":
    sys.exit(main())
