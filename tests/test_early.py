"""Issue 13, R2: how a connection follows where requests begin before uvicorn parses them,
and which whole requests it may answer itself (majlis/serving/early.py). A request it
cannot frame must never be judged early."""

from __future__ import annotations

import pytest

from majlis.serving.early import (
    CARRY_MAX,
    Framer,
    Judge,
    Refusal,
    forwarded,
    judgeable,
    render,
)

BEAT = b'{"playback_token": "abc"}'
# A body may hold anything, a head's end included: only the framing says where it ends.
ODD = b"GET /not-a-request HTTP/1.1\r\n\r\n"
WRITES = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})


def post(
    path: bytes = b"/api/v1/spaces/s/heartbeat", body: bytes = BEAT, extra: bytes = b""
) -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" % (path, len(body), extra)
    return head + body


GET = b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n"


def test_whole_requests_are_counted_and_leave_the_framer_at_a_boundary() -> None:
    framer = Framer()
    assert framer.feed(post()) == 1 and framer.at_boundary()
    assert framer.feed(post() + GET + post()) == 3 and framer.at_boundary()


def test_the_framer_follows_requests_split_anywhere() -> None:
    """Every way of cutting three requests into two reads finds the same three heads, and
    the framer is at a boundary exactly where a request ends."""
    stream = post(b"/api/a", ODD) + GET + post(b"/api/c", ODD)
    ends = {len(post(b"/api/a", ODD)), len(post(b"/api/a", ODD) + GET)}
    for cut in range(1, len(stream)):
        framer = Framer()
        first = framer.feed(stream[:cut])
        assert framer.at_boundary() == (cut in ends)
        second = framer.feed(stream[cut:])
        assert first is not None and second is not None
        assert first + second == 3 and framer.at_boundary()


def test_a_body_that_comes_a_byte_at_a_time_is_skipped() -> None:
    framer = Framer()
    data = post(body=ODD) + GET
    heads = [framer.feed(data[i : i + 1]) for i in range(len(data))]
    assert sum(h or 0 for h in heads) == 2 and framer.at_boundary()
    assert [i for i, h in enumerate(heads) if h] == [
        len(post(body=ODD)) - len(ODD) - 1,
        len(data) - 1,
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        post(extra=b"content-length: 3\r\n"),  # given twice
        b"POST /api/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /api/x HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
    ],
)
def test_the_framer_is_lost_for_good_on_what_it_cannot_follow(data: bytes) -> None:
    framer = Framer()
    assert framer.feed(data) is None and framer.lost and not framer.at_boundary()
    assert framer.feed(post()) is None


def test_a_head_longer_than_the_carry_is_not_followed() -> None:
    framer = Framer()
    assert framer.feed(b"GET /" + b"a" * (CARRY_MAX - 10)) == 0  # a head in progress
    assert not framer.at_boundary()
    assert framer.feed(b"a" * 10) is None and framer.lost


@pytest.mark.parametrize(
    ("data", "asked"),
    [
        (post(), ("POST", "/api/v1/spaces/s/heartbeat")),
        (post(b"/api/x?y=1%20"), ("POST", "/api/x")),  # the query is not the path
        (post(extra=b"Connection: keep-alive\r\n"), ("POST", "/api/v1/spaces/s/heartbeat")),
        (GET, None),  # not a method the gate refuses
        (post(b"/api/b%65at"), None),  # the app decodes escapes
        (post(extra=b"Connection: Close\r\n"), None),
        (post(extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n"), None),
        (post(extra=b"Expect: 100-continue\r\n"), None),
        (post().replace(b"HTTP/1.1", b"HTTP/1.0", 1), None),
        (b"POST /api/x\r\nContent-Length: 0\r\n\r\n", None),  # no version
        (b"POST /api/ x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", None),
    ],
)
def test_only_plain_keep_alive_writes_may_be_answered_early(
    data: bytes, asked: tuple[str, str] | None
) -> None:
    assert judgeable(data, WRITES) == asked


def test_a_refusal_renders_as_a_keep_alive_response() -> None:
    body = b'{"error":"overloaded"}'
    refusal = Refusal(
        503,
        ((b"retry-after", b"2"), (b"content-length", str(len(body)).encode())),
        body,
        wait_s=1.5,
    )
    assert render(refusal) == (
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 2\r\ncontent-length: 22\r\n\r\n" + body
    )


NO = Refusal(503, (), b"", wait_s=1.0)
BEAT_REQUEST = ("POST", "/api/v1/spaces/s/heartbeat")


class Gate:
    """Refuses every POST while armed."""

    methods = frozenset({b"POST"})

    def __init__(self) -> None:
        self.on = True

    def armed(self) -> bool:
        return self.on

    def early(self, method: str, path: str, waited_s: float) -> Refusal | None:
        return NO


def test_a_judge_refuses_by_the_head_and_drops_the_body_as_it_comes() -> None:
    judge = Judge(Gate())
    request = post(body=ODD)
    head_end = len(request) - len(ODD)
    assert judge.read(request[:head_end], may_answer=True) == (b"", NO, False, None)
    assert judge.read(ODD[:5], may_answer=True) == (b"", None, False, None)  # dropped
    # The rest of the body, then a read: the read goes on, nothing else of it.
    assert judge.read(ODD[5:] + GET, may_answer=True) == (GET, None, False, None)
    judge.answered()  # the read
    # The rest of a refused body, then a forwarded request: refused, and said to be.
    ahead = post(extra=b"X-Forwarded-For: 203.0.113.9\r\n")
    assert judge.read(post(body=ODD)[:-3], may_answer=True) == (b"", NO, False, None)
    assert judge.read(ODD[-3:] + ahead, may_answer=True) == (b"", NO, True, None)


def test_a_judge_never_answers_ahead_of_a_request_in_progress() -> None:
    judge = Judge(Gate())
    assert judge.read(GET, may_answer=True) == (GET, None, False, None)  # in progress
    assert judge.read(post(), may_answer=True) == (
        post(),
        None,
        False,
        None,
    )  # behind it: handed on
    judge.answered()
    assert judge.read(post(), may_answer=True) == (
        post(),
        None,
        False,
        None,
    )  # still one in progress
    judge.answered()
    judge.answered()
    assert judge.read(post(), may_answer=True) == (b"", NO, False, None)  # nothing before it now


def test_a_judge_hands_on_what_it_may_not_answer() -> None:
    gate = Gate()
    judge = Judge(gate, at_door=True)
    # Two requests in one read; a client that reads too slowly; a disarmed gate.
    assert judge.read(post() + post(), may_answer=True) == (post() + post(), None, False, None)
    judge.answered()
    judge.answered()
    # Those two could still have been judged: they may wait at the door (door.py).
    assert judge.read(post(), may_answer=False) == (post(), None, False, BEAT_REQUEST)
    judge.answered()
    gate.on = False
    assert judge.read(post(), may_answer=True) == (post(), None, False, BEAT_REQUEST)
    # Without a door, a disarmed gate's connection does not even read the request line.
    judge = Judge(gate)
    assert judge.read(post(), may_answer=True) == (post(), None, False, None)


def test_a_request_refused_after_its_wait_is_withdrawn_and_its_body_dropped() -> None:
    """Judge.refuse: the door's refusal of a request already handed on to it."""
    gate = Gate()
    gate.on = False
    judge = Judge(gate, at_door=True)
    request = post(body=ODD)
    head_end = len(request) - len(ODD)
    read = judge.read(request[:head_end], may_answer=True)
    assert read == (request[:head_end], None, False, BEAT_REQUEST)
    assert read.request is not None
    assert judge.refuse(read.request, 0.5) == NO
    assert judge.read(ODD + GET, may_answer=True) == (GET, None, False, None)  # body dropped
    judge.answered()  # the read: nothing else is in progress, the withdrawn one is not
    gate.on = True
    assert judge.read(post(), may_answer=True) == (b"", NO, False, None)


def test_a_request_forwarded_for_another_client_is_told_apart() -> None:
    assert forwarded(post(extra=b"X-Forwarded-For: 203.0.113.9\r\n"))
    assert not forwarded(post())
    assert not forwarded(post(body=b"\r\nx-forwarded-for: 1.2.3.4"))  # in the body
