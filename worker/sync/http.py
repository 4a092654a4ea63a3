"""One HTTP exchange read with bounds: a byte cap on the body, one deadline for all of it, capped headers.

httpx alone bounds neither: its timeout applies to each read (a body dripping a byte a second never times
out), ``response.text`` reads the whole body into memory, and its decoders inflate a compressed chunk
without limit (a 64 KiB read of a gzip bomb is 64 MiB). So the response is streamed raw (``aiter_raw``) and
inflated here with ``zlib``'s ``max_length``, never keeping more than ``max_bytes`` of the body; only gzip is
asked for (``Accept-Encoding: gzip``). The whole exchange (connect, headers, body) runs under one
``asyncio.timeout``. A body over the cap is cut, not refused: the first ``max_bytes`` are kept with
``truncated`` set and the connection is closed without reading the rest. The header block is bounded by
httpcore (100 KiB, else a protocol error); more headers than ``MAX_HEADERS`` or ``MAX_HEADER_BYTES`` in all
make the answer unusable (its body is not read).
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

MAX_RESPONSE_BYTES = 256 * 1024  # CALSYNC_MAX_RESPONSE_BYTES: body bytes read (after inflating)
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
WIRE_SLACK = 64 * 1024  # compressed bytes read beyond 2 x the cap before giving up on a body that inflates to nothing
ACCEPT_ENCODING = "gzip"


class TransportError(Exception):
    """No usable answer: the message says why (the deadline passed, the connection failed)."""


@dataclass(frozen=True)
class Answer:
    """A response as read: ``body`` holds at most the cap. ``size`` is the body's length in bytes once inflated
    when it was read whole, else the length the server declared (Content-Length of an uncompressed body), else
    None. ``problem`` says why the body is unusable (cut, undecodable, headers over the cap), if it is."""

    status: int
    headers: httpx.Headers
    body: bytes
    size: int | None
    truncated: bool
    problem: str | None = None


@dataclass
class _Progress:
    """How far an exchange got, for the message when the deadline passes."""

    status: int | None = None
    received: int = 0


async def exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    json_body: dict[str, Any] | None,
    params: dict[str, str] | None,
    headers: dict[str, str] | None = None,
    deadline_s: float,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Answer:
    """Send one request and read its answer within ``deadline_s`` and ``max_bytes``. Raises ``TransportError``
    when the deadline passes and ``httpx.HTTPError`` when the connection or the protocol fails."""
    progress = _Progress()
    try:
        async with asyncio.timeout(deadline_s):
            request = client.build_request(method, url, json=json_body, params=params, headers=headers)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                progress.status = response.status_code
                return await _read(response, max_bytes, progress)
            finally:
                await response.aclose()  # a body not read to the end closes the connection, it is never drained
    except TimeoutError:
        got = (
            f" (HTTP {progress.status}, {progress.received} bytes of the body had arrived)"
            if progress.status is not None
            else " (no response headers had arrived)"
        )
        raise TransportError(f"no complete answer within the {deadline_s:g} s deadline{got}") from None


def header_problem(headers: httpx.Headers) -> str | None:
    raw = headers.raw
    size = sum(len(k) + len(v) for k, v in raw)
    if len(raw) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        return (
            f"response headers over the cap: {len(raw)} headers, {size} bytes "
            f"(at most {MAX_HEADERS} headers, {MAX_HEADER_BYTES} bytes); the body was not read"
        )
    return None


def declared_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


async def _read(response: httpx.Response, max_bytes: int, progress: _Progress) -> Answer:
    status, headers = response.status_code, response.headers
    if problem := header_problem(headers):
        return Answer(status, headers, b"", None, True, problem)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    declared = declared_length(headers)
    if encoding in ("", "identity"):
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    else:
        return Answer(status, headers, b"", None, True, f"content-encoding {encoding!r} (only gzip was accepted)")
    kept = bytearray()
    wire_cap = 2 * max_bytes + WIRE_SLACK
    try:
        async for chunk in response.aiter_raw():
            progress.received += len(chunk)
            if inflater is None:
                kept += chunk[: max_bytes + 1 - len(kept)]
            else:
                data = chunk
                while data and not inflater.eof and len(kept) <= max_bytes:
                    kept += inflater.decompress(data, max_bytes + 1 - len(kept))
                    data = inflater.unconsumed_tail
            if len(kept) > max_bytes or progress.received > wire_cap:
                size = declared if inflater is None else None
                cut = f"body over the cap of {max_bytes} bytes (CALSYNC_MAX_RESPONSE_BYTES)"
                cut += f", {size} declared" if size else ""
                return Answer(status, headers, bytes(kept[:max_bytes]), size, True, cut + "; the rest was not read")
    except zlib.error as e:
        return Answer(status, headers, bytes(kept[:max_bytes]), None, True, f"corrupt {encoding} body: {e}")
    if inflater is not None and not inflater.eof:
        return Answer(status, headers, bytes(kept), None, True, f"the {encoding} body ends before its end marker")
    return Answer(status, headers, bytes(kept), len(kept), False)
