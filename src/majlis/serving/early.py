"""Requests refused as they are read, before uvicorn parses them.

A refusal decided in the ASGI application is cheap to decide but not to deliver: reading
the request into a scope, a task for its cycle, the middleware and the answer's headers
cost two thirds of serving a heartbeat (docs/benchmarks.md, "Again, with the indexed
routes"), and the request waits for its task's turn of the loop like any other. While a
worker sheds load, a held connection (holds.py) therefore asks a `Gate` about each whole
request it reads, with the method and path taken from its first line, and writes the
gate's refusal itself: the request never reaches uvicorn.

Only a request that is safe to answer this way is asked about:
- the connection has no request in progress (every request it handed on has been
  answered), so the refusal cannot overtake an earlier answer;
- the bytes read are exactly one whole HTTP/1.1 request, with no body or one of a given
  Content-Length; not chunked, not an upgrade, no `Expect`, no `Connection: close`
  (a `Framer` follows where requests begin, so that a request split over reads is seen
  as one; it is not judged, but the connection's next requests can be);
- its path has no percent-escapes (the gate sees the path as the application would).
Everything else goes to uvicorn as it came, and the application's own shedding answers
it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Framer", "Frames", "Gate", "Refusal", "RequestHead", "render", "requests_in"]

_STATUS = {429: b"Too Many Requests", 503: b"Service Unavailable"}
# A head longer than this is not followed (uvicorn's own limit on a head is larger; such a
# connection's requests all go to the application).
CARRY_MAX = 16 * 1024


@dataclass(frozen=True)
class Refusal:
    """An answer given without the application, and the wait it asks of the client."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # with its content-length
    body: bytes
    wait_s: float


class Gate(Protocol):
    """Asked about a request read whole, by method and path: a refusal, or None to serve
    it. It must be cheap, and the same rule as the application's own shedding."""

    def __call__(self, method: str, path: str, /) -> Refusal | None: ...


@dataclass(frozen=True)
class RequestHead:
    method: bytes
    target: bytes
    plain: bool  # safe to answer without uvicorn (see the module's docstring)


@dataclass(frozen=True)
class Frames:
    """What one stretch of a connection's bytes holds."""

    heads: list[RequestHead]  # requests whose head is in it (a body may follow later)
    carry: bytes  # the start of a head that goes on in the next read
    skip: int  # body bytes of the last request that are still to come


def requests_in(data: bytes) -> Frames | None:
    """The requests in `data`, which begins where a request does. None if one is framed
    in a way this does not follow (chunked, a malformed request line or Content-Length):
    then where the next request begins is unknown."""
    heads: list[RequestHead] = []
    at = 0
    while at < len(data):
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            return Frames(heads, data[at:], 0)
        line_end = data.find(b"\r\n", at, end + 2)
        parts = data[at:line_end].split(b" ")
        fields = data[line_end:end].lower()  # starts at the "\r\n" ending the request line
        if len(parts) != 3 or b"\ntransfer-encoding:" in fields:
            return None
        length = _content_length(fields)
        if length is None:
            return None
        heads.append(RequestHead(parts[0], parts[1], _plain(parts[2], fields)))
        at = end + 4 + length
    return Frames(heads, b"", at - len(data))


class Framer:
    """Where requests begin in a connection's bytes, read after read. It only watches:
    every byte still goes to uvicorn as it comes (a request in progress, however slow,
    is uvicorn's and the application's to see and to limit)."""

    def __init__(self) -> None:
        self._carry = b""  # the start of a head, seen in earlier reads
        self._skip = 0  # body bytes of a request still to come
        self.lost = False  # a request it could not frame: it knows no more boundaries

    def at_boundary(self) -> bool:
        return not self._carry and not self._skip and not self.lost

    def feed(self, data: bytes) -> list[RequestHead] | None:
        """The requests whose head ends in `data`; None once lost."""
        if self.lost:
            return None
        skipped = min(self._skip, len(data))
        self._skip -= skipped
        data = self._carry + data[skipped:]
        frames = requests_in(data)
        if frames is None or len(frames.carry) > CARRY_MAX:
            self.lost, self._carry, self._skip = True, b"", 0
            return None
        self._carry, self._skip = frames.carry, frames.skip
        return frames.heads


def render(refusal: Refusal) -> bytes:
    """The refusal as an HTTP/1.1 response that keeps the connection open."""
    reason = _STATUS.get(refusal.status, b"Refused")
    lines = [b"HTTP/1.1 %d %s" % (refusal.status, reason)]
    lines += [name + b": " + value for name, value in refusal.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + refusal.body


def _content_length(fields: bytes) -> int | None:
    """0 without the header; None if it is given twice or is not a number."""
    start = fields.find(b"\ncontent-length:")
    if start < 0:
        return 0
    if fields.find(b"\ncontent-length:", start + 1) >= 0:
        return None
    value_end = fields.find(b"\r", start + 1)
    value = fields[start + 16 : len(fields) if value_end < 0 else value_end].strip()
    return int(value) if value.isdigit() else None


def _plain(version: bytes, fields: bytes) -> bool:
    if version != b"HTTP/1.1" or b"\nupgrade:" in fields or b"\nexpect:" in fields:
        return False
    start = fields.find(b"\nconnection:")
    if start < 0:
        return True
    value_end = fields.find(b"\r", start + 1)
    return b"close" not in fields[start : len(fields) if value_end < 0 else value_end]
