"""Secret files (worker/credentials.py): bounded, refused when others may read them, per company with a fallback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.credentials import API_KEY, MAX_SECRET_BYTES, SecretFileError, company_secret, read_secret_file


def secret(path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)
    return path


def test_a_secret_is_read_stripped(tmp_path: Path) -> None:
    assert read_secret_file(secret(tmp_path / "k", "  cal_live_abc\n")) == "cal_live_abc"


@pytest.mark.parametrize(
    ("content", "mode", "says"),
    [
        ("cal_live_abc", 0o644, "chmod 600"),
        ("cal_live_abc", 0o640, "chmod 600"),
        (" \n", 0o600, "is empty"),
        (b"\xff\xfe", 0o600, "not UTF-8"),
        ("x" * (MAX_SECRET_BYTES + 1), 0o600, f"larger than {MAX_SECRET_BYTES} bytes"),
    ],
)
def test_an_unusable_secret_file_is_refused_by_name(tmp_path: Path, content: str | bytes, mode: int, says: str) -> None:
    path = secret(tmp_path / "k", content, mode)
    with pytest.raises(SecretFileError) as e:
        read_secret_file(path)
    assert says in str(e.value) and str(path) in str(e.value)
    assert "cal_live" not in str(e.value)  # the message never carries the secret


def test_a_symlink_or_directory_is_not_a_secret(tmp_path: Path) -> None:
    target = secret(tmp_path / "real", "cal_live_abc")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(SecretFileError, match="cannot read"):
        read_secret_file(tmp_path / "link")
    (tmp_path / "dir").mkdir()
    with pytest.raises(SecretFileError):
        read_secret_file(tmp_path / "dir")


def test_company_secret_falls_back_when_the_company_has_none(tmp_path: Path) -> None:
    secret(tmp_path / "7" / API_KEY, "cal_live_seven")
    assert company_secret(tmp_path, 7, API_KEY) == "cal_live_seven"
    assert company_secret(tmp_path, 8, API_KEY) is None
    assert company_secret(None, 7, API_KEY) is None
    secret(tmp_path / "7" / API_KEY, "cal_live_rotated")  # rotation is seen without a restart
    assert company_secret(tmp_path, 7, API_KEY) == "cal_live_rotated"
