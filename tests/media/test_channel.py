"""The media worker's channel: frames, snapshots and errors survive the crossing."""

from __future__ import annotations

import asyncio

import pytest

from majlis.errors import BadRequest, Conflict, MajlisError, Overloaded
from majlis.media.hls.feed import FeedSnapshot
from majlis.media.runtime.channel import (
    MAX_FRAME,
    ChannelError,
    decode_snapshot,
    encode_frame,
    encode_snapshot,
    read_frame,
)
from majlis.plane import decode_error, encode_error


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_come_back_in_order_then_none_at_eof() -> None:
    data = encode_frame({"t": "a", "n": 1}) + encode_frame({"t": "b"}, b"\x00\xffbody")
    reader = _reader(data)
    assert await read_frame(reader) == ({"t": "a", "n": 1}, b"")
    assert await read_frame(reader) == ({"t": "b"}, b"\x00\xffbody")
    assert await read_frame(reader) is None


async def test_frames_split_across_reads_reassemble() -> None:
    data = encode_frame({"t": "x"}, b"y" * 1000)
    reader = asyncio.StreamReader()
    reading = asyncio.create_task(read_frame(reader))
    for i in range(0, len(data), 7):
        reader.feed_data(data[i : i + 7])
        await asyncio.sleep(0)
    assert await reading == ({"t": "x"}, b"y" * 1000)


@pytest.mark.parametrize("cut", [3, 9, 12])
async def test_a_stream_that_ends_inside_a_frame_is_an_error(cut: int) -> None:
    data = encode_frame({"t": "x"}, b"body")
    with pytest.raises(ChannelError):
        await read_frame(_reader(data[:cut]))


async def test_oversized_and_non_object_frames_are_refused() -> None:
    huge = (MAX_FRAME).to_bytes(4, "big") + (1).to_bytes(4, "big")
    with pytest.raises(ChannelError, match="too large"):
        await read_frame(_reader(huge))
    listed = b"[1]"
    frame = len(listed).to_bytes(4, "big") + (0).to_bytes(4, "big") + listed
    with pytest.raises(ChannelError, match="not an object"):
        await read_frame(_reader(frame))
    with pytest.raises(ChannelError, match="not JSON"):
        await read_frame(_reader((2).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"{x"))


@pytest.mark.parametrize("delta", [None, b"#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n", b""])
async def test_a_snapshot_crosses_as_binary(delta: bytes | None) -> None:
    snapshot = FeedSnapshot(
        playlist=b"#EXTM3U\n#EXT-X-VERSION:9\n\xe2\x80\x94\n",
        life=2,
        msn=41,
        part=3,
        complete_msn=40,
        parts_per_segment=8,
        target_duration=2,
        part_target=0.256,
        ended=False,
        delta=delta,
    )
    header, body = encode_snapshot(snapshot)
    frame = await read_frame(_reader(encode_frame({"t": "snapshot", **header}, body)))
    assert frame is not None
    assert decode_snapshot(*frame) == snapshot


def test_a_malformed_snapshot_is_a_channel_error() -> None:
    with pytest.raises(ChannelError):
        decode_snapshot({"life": 1}, b"")


@pytest.mark.parametrize(
    "error",
    [
        BadRequest("that is not an SDP offer", code="bad_sdp"),
        Conflict("the space has ended", code="not_live"),
        Overloaded("the media worker restarted", 1500),
    ],
)
def test_errors_come_back_as_the_same_class(error: MajlisError) -> None:
    back = decode_error(encode_error(error))
    assert type(back) is type(error)
    assert (back.status, back.code, back.reason) == (error.status, error.code, error.reason)
    assert getattr(back, "retry_after_ms", None) == getattr(error, "retry_after_ms", None)


def test_an_unexpected_exception_is_a_500_without_its_details() -> None:
    back = decode_error(encode_error(RuntimeError("secret path /x/y")))
    assert back.status == 500
    assert "secret" not in back.reason
