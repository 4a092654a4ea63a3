"""Is a delivery Cal.com's? ``X-Cal-Signature-256`` is the lowercase hex HMAC-SHA256 of the raw body keyed with the
subscription's secret (Cal.com's sendPayload.ts), or the literal ``no-secret-provided`` for a subscription without
one. Compared in constant time; an unsigned delivery is accepted only where a setting allows it."""

from __future__ import annotations

import enum
import hashlib
import hmac

HEADER = "X-Cal-Signature-256"
NO_SECRET = "no-secret-provided"


class Verdict(enum.Enum):
    VALID = "valid"
    UNSIGNED = "unsigned"  # no-secret-provided, accepted because unsigned deliveries are allowed
    MISSING = "missing"
    REFUSED_UNSIGNED = "refused_unsigned"
    NO_SECRET_CONFIGURED = "no_secret_configured"
    INVALID = "invalid"

    @property
    def accepted(self) -> bool:
        return self in (Verdict.VALID, Verdict.UNSIGNED)


def sign(secret: str, body: bytes) -> str:
    """The header Cal.com sends for ``body`` with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check(header: str | None, body: bytes, secret: str | None, *, allow_unsigned: bool) -> Verdict:
    if header is None or not header.strip():
        return Verdict.MISSING
    if header == NO_SECRET:
        return Verdict.UNSIGNED if allow_unsigned else Verdict.REFUSED_UNSIGNED
    if secret is None:
        return Verdict.NO_SECRET_CONFIGURED
    expected = sign(secret, body).encode()
    return Verdict.VALID if hmac.compare_digest(expected, header.encode("utf-8", "replace")) else Verdict.INVALID
