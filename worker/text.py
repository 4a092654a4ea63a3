"""Text fit for PostgreSQL and the logs: what the worker keeps of anything that came from outside.

PostgreSQL's ``text`` and ``jsonb`` take neither NUL nor invalid UTF-8 (nor the lone surrogates ``json.loads``
makes of ``"\\ud800"``), and one such character makes the whole statement fail. So every text the worker stores
or logs from an answer goes through ``fit`` once: decoded as UTF-8 with replacement, NULs and lone surrogates
replaced by U+FFFD, secrets redacted, then cut to a cap (in UTF-8 bytes, at a character boundary) with the
original size recorded. Redaction runs before the cut, so a cut never leaves half a key behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

BODY_CAP = 64 * 1024  # bytes of a stored response body
MESSAGE_CAP = 4 * 1024  # bytes of an error message (stored and logged)
HEADER_CAP = 1024  # bytes of one stored header value
REDACTED = "[REDACTED]"
REPLACEMENT = "\ufffd"
MIN_SECRET = 4  # shorter "secrets" (an empty key) are not searched for: they would match everywhere

_SURROGATE = re.compile("[\ud800-\udfff]")
# a bearer token of any kind, and anything shaped like a Cal.com API key, even one the worker does not know
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_CAL_KEY = re.compile(r"\bcal_(?:live|test)_[A-Za-z0-9_]+")
_PARTIAL_TAIL = 6  # a cut text ending in this many characters of a secret's beginning is redacted too


@dataclass(frozen=True)
class Fitted:
    """A text as stored: ``size`` is the original's length in UTF-8 bytes, ``truncated`` whether it was cut."""

    text: str
    size: int
    truncated: bool


def clean(text: str) -> str:
    """``text`` with NULs and lone surrogates replaced: PostgreSQL takes it."""
    if text.isascii():
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _SURROGATE.sub(REPLACEMENT, text.replace("\x00", REPLACEMENT))


def decode(raw: bytes | str) -> str:
    """Bytes from outside as clean text (invalid UTF-8 replaced)."""
    return clean(raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace"))


def redact(text: str, secrets: Iterable[str], *, cut: bool = False) -> str:
    """``text`` without the secrets: each occurrence, any bearer token and anything shaped like a Cal.com key
    becomes ``[REDACTED]``. ``cut``: the text was cut off (a read over the cap), so a tail that is the beginning
    of a secret is redacted too."""
    keys = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)
    for key in keys:
        if key in text:
            text = text.replace(key, REDACTED)
    if "bearer" in text.lower():  # the regexes only where they can match: they cost 100 ns a character
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    if "cal_live_" in text or "cal_test_" in text:
        text = _CAL_KEY.sub(REDACTED, text)
    if cut:
        for key in keys:
            for n in range(len(key) - 1, _PARTIAL_TAIL - 1, -1):
                if text.endswith(key[:n]):
                    return text[:-n] + REDACTED
    return text


def cap(text: str, limit: int) -> tuple[str, int, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes at a character boundary: (text, original bytes, cut)."""
    if len(text) * 4 <= limit:  # a fast path: even all 4-byte characters would fit
        return text, len(text.encode("utf-8")), False
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, len(data), False
    return data[:limit].decode("utf-8", errors="ignore"), len(data), True


def readable(raw: bytes | str, secrets: Iterable[str] = (), *, cut: bool = False) -> str:
    """Bytes from outside as text fit to keep, before the cap: decoded, cleaned, redacted. ``cut``: ``raw`` is
    the first part of something longer. JSON parsed from it can still hold what its escapes spell (``\\u0000``,
    a key spelt in ``\\u`` escapes): ``scrub`` such a value."""
    return redact(decode(raw), secrets, cut=cut)


def fit(raw: bytes | str, secrets: Iterable[str] = (), limit: int = BODY_CAP, *, cut: bool = False) -> Fitted:
    """The one way a text from outside is kept: ``readable``, then capped.

    ``size`` counts the UTF-8 bytes of the clean, redacted text before the cap (for bytes of a body, the caller
    records the body's own size next to it). ``cut``: ``raw`` is already the first part of something longer.
    """
    kept, size, truncated = cap(readable(raw, secrets, cut=cut), limit)
    return Fitted(kept, size, truncated or cut)


def message(text: str, secrets: Iterable[str] = (), limit: int = MESSAGE_CAP) -> str:
    """An error message as stored and logged (clean, redacted, capped; a cut one ends in an ellipsis)."""
    fitted = fit(text, secrets, limit)
    return fitted.text + "…" if fitted.truncated else fitted.text


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value with every string in it (keys too) clean and redacted (a request body as archived)."""
    keys = tuple(secrets)
    if isinstance(value, str):
        return redact(clean(value), keys)
    if isinstance(value, dict):
        return {scrub(str(k), keys): scrub(v, keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, keys) for v in value]
    return value
