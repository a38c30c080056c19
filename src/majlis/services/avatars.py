"""Users' pictures: uploaded by their owner, served to anyone, checked before they are kept.

A picture is kept only if it is what it says: its bytes start as its declared type does
(PNG, JPEG or WebP), the whole of it decodes as one image of that type (FFmpeg's image
decoders, through PyAV: no polyglot or truncated file gets through), and it is between
MIN_SIDE and MAX_SIDE pixels a side. The request body limit (64 KiB by default) bounds
its size before any of this. Decoding runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import av

from majlis.clock import Clock
from majlis.errors import BadRequest, NotFound, UnsupportedMediaType
from majlis.services.auth import Caller
from majlis.store.base import Store
from majlis.types import Avatar

__all__ = ["IMAGE_TYPES", "MAX_SIDE", "MIN_SIDE", "Avatars", "check_image"]

MIN_SIDE = 32
MAX_SIDE = 1024


@dataclass(frozen=True, slots=True)
class _Kind:
    magic: tuple[bytes, ...]  # the file starts with one of these
    demuxer: str  # FFmpeg's reader of a lone image of this type


IMAGE_TYPES: dict[str, _Kind] = {
    "image/png": _Kind((b"\x89PNG\r\n\x1a\n",), "png_pipe"),
    "image/jpeg": _Kind((b"\xff\xd8\xff",), "jpeg_pipe"),
    "image/webp": _Kind((b"RIFF",), "webp_pipe"),
}


def media_type(content_type: str) -> str:
    """`image/PNG; charset=x` → `image/png`."""
    return content_type.split(";")[0].strip().lower()


def check_image(content_type: str, data: bytes) -> tuple[int, int]:
    """(width, height) of a picture fit to keep; UnsupportedMediaType or BadRequest with
    the reason otherwise."""
    kind_name = media_type(content_type)
    kind = IMAGE_TYPES.get(kind_name)
    if kind is None:
        raise UnsupportedMediaType(
            f"a picture is {', '.join(sorted(IMAGE_TYPES))}; not {content_type[:60]!r}"
        )
    webp_ok = kind_name != "image/webp" or data[8:12] == b"WEBP"
    if not data.startswith(kind.magic) or not webp_ok:
        raise BadRequest(f"the body is not a {content_type} file", code="bad_image")
    try:
        with av.open(io.BytesIO(data), mode="r", format=kind.demuxer) as container:
            frame = next(container.decode(video=0))
            width, height = frame.width, frame.height
    except (av.FFmpegError, StopIteration, ValueError, IndexError) as exc:
        raise BadRequest(f"the picture does not decode: {exc}", code="bad_image") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise BadRequest(
            f"a picture is {MIN_SIDE} to {MAX_SIDE} pixels a side; this one is {width}x{height}",
            code="bad_image_size",
        )
    return width, height


class Avatars:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def put(self, caller: Caller, content_type: str, data: bytes) -> Avatar:
        user_id = caller.require_user()
        await asyncio.to_thread(check_image, content_type, data)
        avatar = Avatar(media_type(content_type), data, self._clock.now())
        await self._store.put_avatar(user_id, avatar)
        return avatar

    async def remove(self, caller: Caller) -> None:
        if not await self._store.delete_avatar(caller.require_user()):
            raise NotFound("you have no picture", code="avatar_not_found")

    async def get(self, user_id: str) -> Avatar:
        avatar = await self._store.get_avatar(user_id)
        if avatar is None:
            raise NotFound("no picture for this user", code="avatar_not_found")
        return avatar
