"""Issue 13, R2: how a connection tells whole requests apart before uvicorn parses them
(majlis/serving/early.py). A request it cannot frame must never be judged early."""

from __future__ import annotations

import pytest

from majlis.serving.early import Refusal, RequestHead, render, requests_in

BEAT = b'{"playback_token": "abc"}'


def post(
    path: bytes = b"/api/v1/spaces/s/heartbeat", body: bytes = BEAT, extra: bytes = b""
) -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n" % (path, len(body), extra)
    return head + body


def test_one_whole_request_with_a_body() -> None:
    data = post()
    assert requests_in(data) == (
        [RequestHead(b"POST", b"/api/v1/spaces/s/heartbeat", plain=True)],
        len(data),
    )


def test_requests_sent_together_are_counted_and_the_rest_left() -> None:
    get = b"GET /hls/x.m3u8 HTTP/1.1\r\nhost: t\r\n\r\n"
    data = post() + get + post()[:30]
    heads, whole = requests_in(data) or ([], -1)
    assert [h.method for h in heads] == [b"POST", b"GET"]
    assert whole == len(post() + get)


@pytest.mark.parametrize("cut", [5, 20, len(post()) - len(BEAT), len(post()) - 1])
def test_a_request_cut_short_is_not_whole(cut: int) -> None:
    assert requests_in(post()[:cut]) == ([], 0)


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
    framed = requests_in(data)
    assert framed is not None
    assert [h.plain for h in framed[0]] == [plain]


def test_a_request_without_headers() -> None:
    assert requests_in(b"GET / HTTP/1.1\r\n\r\n") == (
        [RequestHead(b"GET", b"/", plain=True)],
        18,
    )


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
