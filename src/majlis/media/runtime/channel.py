"""The wire between `majlis serve` and its media worker process.

One stream socket, both ways. A frame is a 4-byte big-endian header length, a 4-byte
big-endian body length, the JSON header, then the body bytes. The body carries what is
binary (a snapshot's playlist and delta) so nothing is base64-inflated or JSON-escaped:
a 3-hour playlist is ~400 KB and goes out four times a second per space.

Errors cross as {status, code, reason, retry_after_ms?} and come back as the same
MajlisError class, so an API caller sees the same answer in thread and process mode.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from majlis.media.hls.feed import FeedSnapshot
from majlis.types import TranscriptLine

__all__ = [
    "MAX_FRAME",
    "ChannelError",
    "Message",
    "decode_line",
    "decode_snapshot",
    "encode_frame",
    "encode_line",
    "encode_snapshot",
    "read_frame",
]

Message = dict[str, Any]
_LENGTHS = struct.Struct(">II")
# A frame bigger than this is a broken peer, not a playlist (a day-long one is ~3 MB).
MAX_FRAME = 64 * 1024 * 1024


class ChannelError(Exception):
    """The peer sent something that is not a frame."""


def encode_frame(header: Message, body: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTHS.pack(len(head), len(body)) + head + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[Message, bytes] | None:
    """The next frame, or None at a clean end of stream (the peer closed or died)."""
    try:
        lengths = await reader.readexactly(_LENGTHS.size)
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise ChannelError("the stream ended inside a frame") from None
        return None
    except ConnectionResetError:
        # A peer killed with frames still unread in its socket resets the stream
        # instead of closing it: it is just as gone.
        return None
    head_length, body_length = _LENGTHS.unpack(lengths)
    if head_length + body_length > MAX_FRAME:
        raise ChannelError(f"a frame of {head_length + body_length} bytes is too large")
    try:
        head = await reader.readexactly(head_length)
        body = await reader.readexactly(body_length)
    except asyncio.IncompleteReadError:
        raise ChannelError("the stream ended inside a frame") from None
    try:
        header = json.loads(head)
    except ValueError:
        raise ChannelError("a frame header is not JSON") from None
    if not isinstance(header, dict):
        raise ChannelError("a frame header is not an object")
    return header, body


def encode_snapshot(snapshot: FeedSnapshot) -> tuple[Message, bytes]:
    delta = snapshot.delta
    header: Message = {
        "life": snapshot.life,
        "msn": snapshot.msn,
        "part": snapshot.part,
        "complete_msn": snapshot.complete_msn,
        "parts_per_segment": snapshot.parts_per_segment,
        "target_duration": snapshot.target_duration,
        "part_target": snapshot.part_target,
        "ended": snapshot.ended,
        "playlist_bytes": len(snapshot.playlist),
        "has_delta": delta is not None,
    }
    return header, snapshot.playlist + (delta or b"")


def decode_snapshot(header: Message, body: bytes) -> FeedSnapshot:
    try:
        split = int(header["playlist_bytes"])
        return FeedSnapshot(
            playlist=body[:split],
            life=int(header["life"]),
            msn=int(header["msn"]),
            part=int(header["part"]),
            complete_msn=int(header["complete_msn"]),
            parts_per_segment=int(header["parts_per_segment"]),
            target_duration=int(header["target_duration"]),
            part_target=float(header["part_target"]),
            ended=bool(header["ended"]),
            delta=body[split:] if header["has_delta"] else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ChannelError(f"a snapshot frame is malformed: {error!r}") from None


def encode_line(line: TranscriptLine) -> list[object]:
    """A caption line as it crosses the wire: [start, end, text, speaker]."""
    return [line.start, line.end, line.text, line.speaker]


def decode_line(wire: object) -> TranscriptLine:
    """The line `encode_line` sent; ChannelError for anything else."""
    if not isinstance(wire, list) or len(wire) != 4:
        raise ChannelError(f"not a caption line: {wire!r:.80}")
    start, end, text, speaker = wire
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        raise ChannelError(f"a caption line without times: {wire!r:.80}")
    return TranscriptLine(float(start), float(end), str(text), str(speaker))
