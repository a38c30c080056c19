"""Requests refused as they are read, before uvicorn parses them.

A refusal decided in the ASGI application is cheap to decide but not to deliver: reading
the request into a scope, a task for its cycle, the middleware and the answer's headers
cost two thirds of serving a heartbeat (docs/benchmarks.md, "Again, with the indexed
routes"), and the request waits for its task's turn of the loop like any other. While a
worker sheds load, a held connection (holds.py) therefore asks a `Gate` about each whole
request it reads, with the method and path taken from its first line, and writes the
gate's refusal itself: the request never reaches uvicorn.

Only a request that is safe to answer this way is asked about (`judgeable`):
- the connection has no request in progress (every request it handed on has been
  answered), so the refusal cannot overtake an earlier answer;
- the bytes read are one request, from its start: whole, or its head whole and its body
  still to come (a `Framer` follows where requests begin, read after read, without
  holding any bytes back), with a method the gate may refuse. A request refused with
  its body to come has that body dropped as it arrives;
- it is HTTP/1.1 with no body or one of a given Content-Length: not chunked, not an
  upgrade, no `Expect`, no `Connection: close`;
- its path has no percent-escapes (the gate sees the path as the application would).
Everything else goes to uvicorn as it came, and the application's own shedding answers
it the same way.

Every request read on a gated connection is framed, shedding or not, so the framing is
a few byte searches (about a microsecond), and a request line is read only while the
gate is armed (or a door waits for it: door.py), and only for a method the gate names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = [
    "CARRY_MAX",
    "Framer",
    "Gate",
    "Judge",
    "Read",
    "Refusal",
    "forwarded",
    "judgeable",
    "render",
]

_STATUS = {429: b"Too Many Requests", 503: b"Service Unavailable"}
# A head longer than this is not followed (uvicorn's own limit on a head is larger; such a
# connection's requests all go to the application).
CARRY_MAX = 16 * 1024
# The fields that decide where a request's body ends. (Regular expressions: a search of a
# head for these costs less than lowering a copy of it to find them.)
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding)[ \t]*:[ \t]*([^\r]*)", re.I)
# A field a proxy adds to name the client it forwards for.
_FORWARDED = re.compile(rb"\r\nx-forwarded-for[ \t]*:", re.I)
# Fields that ask for more than a plain answer on a connection kept open.
_NOT_PLAIN = re.compile(rb"\r\n(?:upgrade|expect)[ \t]*:|\r\nconnection[ \t]*:[^\r]*close", re.I)


@dataclass(frozen=True)
class Refusal:
    """An answer given without the application, and the wait it asks of the client."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # with its content-length
    body: bytes
    wait_s: float


class Gate(Protocol):
    """Asked about a request read whole: a refusal, or None to serve it. It must be cheap,
    and the same rule as the application's own shedding."""

    @property
    def methods(self) -> frozenset[bytes]:
        """The methods it may refuse: a request with another is never asked about."""
        ...

    def armed(self) -> bool:
        """False while it would refuse nothing: then nothing is asked, and the reading
        stays a few byte searches."""
        ...

    def early(self, method: str, path: str, waited_s: float, /) -> Refusal | None:
        """`waited_s`: how long the request waited at the door (door.py) before this."""
        ...


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

    def in_body(self) -> bool:
        """Whether the last head fed ended a request whose body is still to come."""
        return self._skip > 0

    def drop_body(self) -> int:
        """Forget the body still to come (its request was answered without uvicorn): how
        many bytes of it the connection must drop as they arrive."""
        skipped, self._skip = self._skip, 0
        return skipped

    def feed(self, data: bytes) -> int | None:
        """How many requests' heads end in `data`; None once lost (chunked, a malformed
        or repeated Content-Length, a head over CARRY_MAX)."""
        if self.lost:
            return None
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
            if self._skip:
                return 0  # all of it body
        if self._carry:
            data, self._carry = self._carry + data, b""
        heads, at, size = 0, 0, len(data)
        while at < size:
            end = data.find(b"\r\n\r\n", at)
            if end < 0:
                if size - at > CARRY_MAX:
                    self._lose()
                    return None
                self._carry = data[at:]
                return heads
            length = _body_length(data, at, end + 2)
            if length is None:
                self._lose()
                return None
            heads += 1
            at = end + 4 + length
        self._skip = at - size
        return heads

    def _lose(self) -> None:
        self.lost, self._carry, self._skip = True, b"", 0


class Read(NamedTuple):
    """What a connection does with one read."""

    passed: bytes  # what goes on to uvicorn
    refusal: Refusal | None  # to write, for the request the read held
    forwarded: bool  # that request named another client (X-Forwarded-For)
    # The method and path of the one request `passed` holds, if it could have been judged
    # (and still can be, by `Judge.refuse`): it may wait at the door.
    request: tuple[str, str] | None = None


class Judge:
    """One connection's requests as they are read: which the `gate` refuses before
    uvicorn sees them. It counts the requests handed on until they are `answered`, so a
    refusal never overtakes an earlier answer, and drops a refused request's body.
    `at_door`: each request it could judge is named in its `Read` (for the door), armed
    or not; otherwise the request line is read only while the gate is armed."""

    def __init__(self, gate: Gate, at_door: bool = False) -> None:
        self._gate = gate
        self._at_door = at_door
        self._framer = Framer()
        self._pending = 0  # requests handed on and not yet answered
        self._dropping = 0  # bytes still to come of a refused request's body

    def answered(self) -> None:
        self._pending = max(0, self._pending - 1)

    def refuse(self, request: tuple[str, str], waited_s: float) -> Refusal | None:
        """The gate's answer, after `waited_s` at the door, to the request the last read
        passed on; refused, that request is withdrawn (as if never handed on) and the rest
        of its body is dropped as it arrives."""
        refusal = self._gate.early(*request, waited_s)
        if refusal is not None:
            self._pending = max(0, self._pending - 1)
            self._dropping = self._framer.drop_body()
        return refusal

    def read(self, data: bytes, may_answer: bool) -> Read:
        """What of `data` goes on to uvicorn, and the refusal to write for the request it
        held, if any (only if `may_answer`: the connection can take a write now)."""
        if self._dropping:
            dropped = min(self._dropping, len(data))
            self._dropping -= dropped
            data = data[dropped:]
            if not data:
                return Read(data, None, False)
        framer = self._framer
        if framer.lost:
            return Read(data, None, False)
        idle = self._pending == 0 and framer.at_boundary()
        heads = framer.feed(data)
        if not heads:
            return Read(data, None, False)
        # One request from its start, nothing before it in progress, nothing after it
        # but its own body: judge it by its head.
        alone = framer.at_boundary() or framer.in_body()
        gate = self._gate
        one = idle and heads == 1 and alone
        armed = one and gate.armed()
        asked = judgeable(data, gate.methods) if armed or (one and self._at_door) else None
        refusal = gate.early(*asked, 0.0) if asked is not None and armed and may_answer else None
        if refusal is None:
            self._pending += heads
            return Read(data, None, False, asked)
        self._dropping = framer.drop_body()
        return Read(b"", refusal, forwarded(data))


def judgeable(data: bytes, methods: frozenset[bytes]) -> tuple[str, str] | None:
    """The method and path of the request at the start of `data` (its head whole), if it
    may be answered without uvicorn and its method is one of `methods`; None otherwise."""
    space = data.find(b" ")
    method = data[:space]
    if method not in methods:
        return None
    line_end = data.find(b"\r\n")
    target_end = data.rfind(b" ", space + 1, line_end)
    if target_end < 0 or data[target_end + 1 : line_end] != b"HTTP/1.1":
        return None
    path = data[space + 1 : target_end].partition(b"?")[0]
    if b"%" in path or b" " in path:
        return None
    if _NOT_PLAIN.search(data, line_end, data.find(b"\r\n\r\n") + 2):
        return None
    return method.decode("latin-1"), path.decode("latin-1")


def forwarded(request: bytes) -> bool:
    """Whether the request at the start of `request` (its head whole) was forwarded by a
    proxy for another client (it names one in X-Forwarded-For)."""
    return _FORWARDED.search(request, 0, request.find(b"\r\n\r\n") + 2) is not None


def render(refusal: Refusal) -> bytes:
    """The refusal as an HTTP/1.1 response that keeps the connection open."""
    reason = _STATUS.get(refusal.status, b"Refused")
    lines = [b"HTTP/1.1 %d %s" % (refusal.status, reason)]
    lines += [name + b": " + value for name, value in refusal.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + refusal.body


def _body_length(data: bytes, start: int, end: int) -> int | None:
    """The Content-Length of the head in data[start:end] (0 without one); None if it is
    chunked, or the length is given twice or is not a number."""
    found = _FRAMING.search(data, start, end)
    if found is None:
        return 0
    if found.group(1).lower() != b"content-length" or _FRAMING.search(data, found.end(), end):
        return None
    value = found.group(2).rstrip(b" \t")
    return int(value) if value.isdigit() else None
