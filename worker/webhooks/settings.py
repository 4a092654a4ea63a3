"""Settings of `calsync webhooks`: each a flag or an environment variable, read by the worker's typed parsers
(worker.sync.settings.Setting); a bad value stops the command before anything listens or connects.

The secret: ``CALCOM_WEBHOOK_SECRET``, else the file ``CALCOM_WEBHOOK_SECRET_FILE``, else the systemd credential
``calcom_webhook_secret``; per company (``POST /webhooks/calcom/{company_id}``) the file
``$CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_webhook_secret`` first (worker/credentials.py). Files are read on
each delivery, so a rotated secret needs no restart; the secret is never logged or stored.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from worker.credentials import WEBHOOK_SECRET, company_secret, read_secret_file
from worker.errors import CliError, Exit
from worker.sync.settings import Integer, Invalid, Number, Setting

DEFAULT_LISTEN = "127.0.0.1:8787"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class Listen:
    expected = "HOST:PORT such as 127.0.0.1:8787 (port 0: any free port)"

    def __call__(self, value: str) -> tuple[str, int]:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise Invalid("not HOST:PORT")
        return host.strip("[]"), int(port)


class Flag:
    expected = "1/true/yes/on or 0/false/no/off"

    def __call__(self, value: str) -> bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise Invalid("not a yes or no")


class Directory:
    expected = "an existing directory"

    def __call__(self, value: str) -> Path:
        if not Path(value).is_dir():
            raise Invalid("no such directory")
        return Path(value)


@dataclass
class WebhookSettings:
    database_url: str
    listen: tuple[str, int] = ("127.0.0.1", 8787)
    max_body_bytes: int = 1024 * 1024
    read_timeout_s: float = 10.0
    allow_unsigned: bool = False
    retry_s: float = 5.0
    retry_batch: int = 10  # parked deliveries retried per transaction (up to RETRY_PER_TICK each retry_s)
    pool_size: int = 4  # 3 lanes and the retry timer; see README "Throughput" for why not more
    batch_max: int = 64  # deliveries at most in one call and commit (calsync.receive_webhooks)
    reuse_port: bool = False  # SO_REUSEPORT: several receiver processes (units) share one port
    credentials_dir: Path | None = None
    secret: str | None = None  # CALCOM_WEBHOOK_SECRET, read once at start
    secret_file: Path | None = None  # CALCOM_WEBHOOK_SECRET_FILE or the systemd credential, read on each use
    secret_file_checks_mode: bool = True

    def secret_for(self, company_id: int | None) -> str | None:
        """The secret a delivery to this company's URL is signed with: the company's own, else the single one."""
        if company_id is not None and (own := company_secret(self.credentials_dir, company_id, WEBHOOK_SECRET)):
            return own
        if self.secret is not None:
            return self.secret
        if self.secret_file is not None:
            return read_secret_file(self.secret_file, check_mode=self.secret_file_checks_mode)
        return None


SETTINGS = (
    Setting("listen", "CALSYNC_WEBHOOK_LISTEN", Listen(), "address to listen on"),
    Setting("max_body_bytes", "CALSYNC_WEBHOOK_MAX_BODY_BYTES", Integer(1024), "larger bodies get 413"),
    Setting("read_timeout_s", "CALSYNC_WEBHOOK_READ_TIMEOUT_S", Number(0, exclusive=True), "deadline to read a body"),
    Setting("allow_unsigned", "CALSYNC_WEBHOOK_ALLOW_UNSIGNED", Flag(), "accept 'no-secret-provided' deliveries"),
    Setting("retry_s", "CALSYNC_WEBHOOK_RETRY_S", Number(0, exclusive=True), "retry parked deliveries this often"),
    Setting("retry_batch", "CALSYNC_WEBHOOK_RETRY_BATCH", Integer(1, 100), "parked deliveries retried per commit"),
    Setting("pool_size", "CALSYNC_WEBHOOK_POOL", Integer(1, 100), "database connections"),
    Setting("batch_max", "CALSYNC_WEBHOOK_BATCH", Integer(1, 1000), "deliveries at most in one call and commit"),
    Setting("reuse_port", "CALSYNC_WEBHOOK_REUSE_PORT", Flag(), "SO_REUSEPORT: several receivers on one port"),
    Setting("credentials_dir", "CALSYNC_CREDENTIALS_DIR", Directory(), "per-company secrets: <dir>/<company>/"),
)


class MissingSecret(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.USAGE)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = WebhookSettings(database_url="")
    p.add_argument("--database-url", default=None, help="PostgreSQL URL [env CALSYNC_DATABASE_URL, then DATABASE_URL]")
    for s in SETTINGS:
        default = getattr(d, s.name)
        shown = DEFAULT_LISTEN if s.name == "listen" else ("none" if default is None else default)
        p.add_argument(s.flag, default=None, metavar=s.name.upper(),
                       help=f"{s.help}: {s.expected} [env {s.env}; default {shown}]")  # fmt: skip
    p.epilog = (
        "The secret comes from CALCOM_WEBHOOK_SECRET, CALCOM_WEBHOOK_SECRET_FILE or the systemd credential "
        "calcom_webhook_secret (per company: $CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_webhook_secret); it is "
        "never logged or stored."
    )


def from_args(args: argparse.Namespace) -> WebhookSettings:
    from worker.db import resolve_url

    values = {s.name: value for s in SETTINGS if (value := s.read(getattr(args, s.name, None))) is not None}
    cfg = WebhookSettings(database_url=resolve_url(args.database_url), **values)
    if secret := os.environ.get("CALCOM_WEBHOOK_SECRET", "").strip():
        cfg.secret = secret
    elif named := os.environ.get("CALCOM_WEBHOOK_SECRET_FILE", "").strip():
        if not Path(named).is_file():
            raise MissingSecret(
                f"CALCOM_WEBHOOK_SECRET_FILE={named!r} is not a file: set it to the file that holds the secret"
            )
        cfg.secret_file = Path(named)
        read_secret_file(cfg.secret_file)  # a file that can't be used stops the start, not the first delivery
    elif (creds := os.environ.get("CREDENTIALS_DIRECTORY")) and (Path(creds) / WEBHOOK_SECRET).is_file():
        # the service's own copy (mode 0400 under $CREDENTIALS_DIRECTORY)
        cfg.secret_file, cfg.secret_file_checks_mode = Path(creds) / WEBHOOK_SECRET, False
    if cfg.secret is None and cfg.secret_file is None and cfg.credentials_dir is None and not cfg.allow_unsigned:
        raise MissingSecret(
            "no Cal.com webhook secret: set CALCOM_WEBHOOK_SECRET, CALCOM_WEBHOOK_SECRET_FILE, the systemd credential "
            "calcom_webhook_secret or CALSYNC_CREDENTIALS_DIR (or allow unsigned deliveries with "
            "CALSYNC_WEBHOOK_ALLOW_UNSIGNED=1)"
        )
    return cfg
