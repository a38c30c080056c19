"""Issue 13, R2: how a connection tells whole requests apart before uvicorn parses them
(majlis/serving/early.py). A request it cannot frame must never be judged early."""

from __future__ import annotations

import pytest

from majlis.serving.early import (
    CARRY_MAX,
    Framer,
    Frames,
    Refusal,
    RequestHead,
    render,
    requests_in,
)

BEAT = b'{"playback_token": "abc"}'


def post(
    path: bytes = b"/api/v1/spaces/s/heartbeat", body: bytes = BEAT, extra: bytes = b""
) -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" % (path, len(body), extra)
    return head + body


def test_one_whole_request_with_a_body() -> None:
    head = RequestHead(b"POST", b"/api/v1/spaces/s/heartbeat", plain=True)
    assert requests_in(post()) == Frames([head], b"", 0)


def test_requests_sent_together_are_counted_and_the_rest_carried() -> None:
    get = b"GET /hls/x.m3u8 HTTP/1.1\r\nhost: t\r\n\r\n"
    frames = requests_in(post() + get + post()[:30])
    assert frames is not None
    assert [h.method for h in frames.heads] == [b"POST", b"GET"]
    assert (frames.carry, frames.skip) == (post()[:30], 0)


@pytest.mark.parametrize("cut", [5, 20, len(post()) - len(BEAT) - 1])
def test_a_head_cut_short_is_carried(cut: int) -> None:
    assert requests_in(post()[:cut]) == Frames([], post()[:cut], 0)


@pytest.mark.parametrize("missing", [1, len(BEAT)])
def test_a_body_cut_short_is_skipped_when_it_comes(missing: int) -> None:
    frames = requests_in(post()[:-missing])
    assert frames is not None
    assert (len(frames.heads), frames.carry, frames.skip) == (1, b"", missing)


def test_the_framer_follows_requests_split_anywhere() -> None:
    """Every way of cutting three requests into reads finds the same three heads, and the
    framer is at a boundary exactly where a request ends."""
    stream = post(b"/api/a") + b"GET /b HTTP/1.1\r\nhost: t\r\n\r\n" + post(b"/api/c")
    ends = {len(post(b"/api/a")), len(stream) - len(post(b"/api/c")), len(stream)}
    for cut in range(1, len(stream)):
        framer = Framer()
        first, second = framer.feed(stream[:cut]), None
        assert framer.at_boundary() == (cut in ends)
        second = framer.feed(stream[cut:])
        assert first is not None and second is not None
        assert [h.target for h in first + second] == [b"/api/a", b"/b", b"/api/c"]
        assert framer.at_boundary()


def test_the_framer_is_lost_for_good_on_what_it_cannot_follow() -> None:
    framer = Framer()
    assert framer.feed(b"POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n") is None
    assert framer.feed(post()) is None and framer.lost and not framer.at_boundary()
    endless = Framer()
    assert endless.feed(b"GET /" + b"a" * (CARRY_MAX - 10)) == []  # a head in progress, carried
    assert endless.feed(b"a" * 10) is None and endless.lost


@pytest.mark.parametrize(
    "data",
    [
        b"POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        post(extra=b"content-length: 3\r\n"),  # given twice
        b"POST /api/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /api/x HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
        b"POST /api/x\r\nContent-Length: 0\r\n\r\n",  # no version
        b"POST  /api/x HTTP/1.1\r\n\r\n",  # two spaces: not a request line we follow
    ],
)
def test_framing_it_does_not_follow_is_none(data: bytes) -> None:
    assert requests_in(data) is None


@pytest.mark.parametrize(
    ("extra", "version", "plain"),
    [
        (b"", b"HTTP/1.1", True),
        (b"Connection: keep-alive\r\n", b"HTTP/1.1", True),
        (b"Connection: Close\r\n", b"HTTP/1.1", False),
        (b"Connection: Upgrade\r\nUpgrade: websocket\r\n", b"HTTP/1.1", False),
        (b"Expect: 100-continue\r\n", b"HTTP/1.1", False),
        (b"", b"HTTP/1.0", False),
    ],
)
def test_only_plain_keep_alive_requests_may_be_answered_early(
    extra: bytes, version: bytes, plain: bool
) -> None:
    data = post(extra=extra).replace(b"HTTP/1.1", version, 1)
    frames = requests_in(data)
    assert frames is not None
    assert [h.plain for h in frames.heads] == [plain]


def test_a_request_without_headers() -> None:
    head = RequestHead(b"GET", b"/", plain=True)
    assert requests_in(b"GET / HTTP/1.1\r\n\r\n") == Frames([head], b"", 0)


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
