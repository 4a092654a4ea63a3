"""Worker settings: every one can be given as a flag or an environment variable (shown in --help)."""

from __future__ import annotations

import argparse
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

ENV = {
    "database_url": "CALSYNC_DATABASE_URL",
    "base_url": "CALCOM_BASE_URL",
    "concurrency": "CALSYNC_CONCURRENCY",
    "rate_limit": "CALSYNC_RATE_LIMIT",
    "rate_window_s": "CALSYNC_RATE_WINDOW_S",
    "batch_size": "CALSYNC_BATCH",
    "lease_s": "CALSYNC_LEASE_S",
    "max_attempts": "CALSYNC_MAX_ATTEMPTS",
    "retry_base_s": "CALSYNC_RETRY_BASE_S",
    "retry_cap_s": "CALSYNC_RETRY_CAP_S",
    "poll_interval_s": "CALSYNC_POLL_INTERVAL_S",
    "request_timeout_s": "CALSYNC_REQUEST_TIMEOUT_S",
    "shutdown_deadline_s": "CALSYNC_SHUTDOWN_DEADLINE_S",
    "metrics_port": "CALSYNC_METRICS_PORT",
    "worker_id": "CALSYNC_WORKER_ID",
}


@dataclass
class WorkerSettings:
    database_url: str
    api_key: str
    base_url: str = "https://api.cal.com"
    concurrency: int = 8
    rate_limit: int = 120
    rate_window_s: float = 60.0
    batch_size: int = 32
    lease_s: float = 300.0
    max_attempts: int = 8
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0
    poll_interval_s: float = 5.0
    request_timeout_s: float = 15.0
    shutdown_deadline_s: float = 20.0
    metrics_port: int | None = None
    worker_id: str = ""
    once: bool = False

    def __post_init__(self) -> None:
        if not self.worker_id:
            self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class MissingApiKey(SystemExit):
    pass


def read_api_key() -> str:
    """CALCOM_API_KEY, else the file CALCOM_API_KEY_FILE, else the systemd credential calcom_api_key."""
    if key := os.environ.get("CALCOM_API_KEY"):
        return key.strip()
    path = os.environ.get("CALCOM_API_KEY_FILE")
    if not path and (creds := os.environ.get("CREDENTIALS_DIRECTORY")):
        path = str(Path(creds) / "calcom_api_key")
    if path and Path(path).is_file():
        return Path(path).read_text().strip()
    raise MissingApiKey(
        "calsync worker: no Cal.com API key: set CALCOM_API_KEY, CALCOM_API_KEY_FILE, or the systemd credential "
        "calcom_api_key (LoadCredential=calcom_api_key:/etc/calsync/calcom_api_key)"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = WorkerSettings(database_url="", api_key="")

    def opt(name: str, type_: type, help_: str) -> None:
        env = ENV[name]
        default = getattr(d, name)
        p.add_argument(
            f"--{name.replace('_', '-')}", type=type_, default=None, help=f"{help_} [env {env}; default {default}]"
        )

    p.add_argument("--database-url", default=None, help="PostgreSQL URL [env CALSYNC_DATABASE_URL, then DATABASE_URL]")
    opt("base_url", str, "Cal.com API base URL")
    opt("concurrency", int, "appointments synced at once")
    opt("rate_limit", int, "requests per rate window allowed by Cal.com for the key")
    opt("rate_window_s", float, "rate window in seconds")
    opt("batch_size", int, "events claimed per statement")
    opt("lease_s", float, "lease on a claimed event, seconds")
    opt("max_attempts", int, "attempts before an event is dead and its appointment flagged")
    opt("retry_base_s", float, "first retry delay; doubles per failed attempt (+-25%% jitter)")
    opt("retry_cap_s", float, "longest retry delay")
    opt("poll_interval_s", float, "poll when no notification arrives, seconds")
    opt("request_timeout_s", float, "timeout of each HTTP request, seconds")
    opt("shutdown_deadline_s", float, "on SIGTERM, finish in-flight work for at most this long")
    opt("metrics_port", int, "serve Prometheus metrics on 127.0.0.1:PORT")
    opt("worker_id", str, "this worker's id (leases, logs)")
    p.add_argument("--once", action="store_true", help="drain what is due, then exit")
    p.epilog = (
        "The API key comes from CALCOM_API_KEY, CALCOM_API_KEY_FILE or the systemd credential "
        "calcom_api_key; it is never logged or stored."
    )


def from_args(args: argparse.Namespace, database_url: str) -> WorkerSettings:
    values: dict[str, object] = {}
    for name, env in ENV.items():
        if name == "database_url":
            continue
        field_type = type(getattr(WorkerSettings(database_url="", api_key="", worker_id="x"), name) or 0)
        value = getattr(args, name, None)
        if value is None and env in os.environ:
            raw = os.environ[env]
            value = raw if name in ("base_url", "worker_id") else (float(raw) if field_type is float else int(raw))
        if value is not None:
            values[name] = value
    return WorkerSettings(database_url=database_url, api_key=read_api_key(), once=args.once, **values)  # type: ignore[arg-type]
