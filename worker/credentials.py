"""Secrets read from files: Cal.com API keys and webhook secrets, never from the database, never logged.

Layout (one directory per company, systemd's ``LoadCredential=`` can provide each file)::

    $CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_api_key
    $CALSYNC_CREDENTIALS_DIR/<company_id>/calcom_webhook_secret

A secret file is read bounded (``MAX_SECRET_BYTES``), stripped of surrounding whitespace, and refused when it is
empty or when group or others may read it (mode 0600 or 0400: a key readable by every local user is a leak).
Files are read when asked for, so a key added or rotated is seen without a restart.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from worker.errors import CliError, Exit

MAX_SECRET_BYTES = 4096
API_KEY = "calcom_api_key"
WEBHOOK_SECRET = "calcom_webhook_secret"


class SecretFileError(CliError):
    """A secret file exists but can't be used; the message names the file and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.USAGE)


def read_secret_file(path: Path, *, check_mode: bool = True) -> str:
    """The secret in ``path``; SecretFileError when it is unreadable, too large, empty or readable by others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise SecretFileError(f"cannot read the secret file {path}: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"the secret file {path} is not a regular file")
        if check_mode and info.st_mode & 0o077:
            raise SecretFileError(
                f"the secret file {path} is readable by group or others (mode {stat.S_IMODE(info.st_mode):o}): "
                f"chmod 600 {path}"
            )
        data = os.read(fd, MAX_SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(f"the secret file {path} is larger than {MAX_SECRET_BYTES} bytes: it holds no key")
    try:
        secret = data.decode().strip()
    except UnicodeDecodeError:
        raise SecretFileError(f"the secret file {path} is not UTF-8 text") from None
    if not secret:
        raise SecretFileError(f"the secret file {path} is empty: put the secret in it")
    return secret


def company_secret(root: Path | None, company_id: int | str, name: str) -> str | None:
    """The company's own secret ``name`` from the credentials directory; None when it has none (the caller falls
    back to the single key, exactly like the app)."""
    if root is None:
        return None
    path = root / str(company_id) / name
    if not path.exists():
        return None
    return read_secret_file(path)
