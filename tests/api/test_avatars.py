"""Users' pictures (issue 16): a PNG, JPEG or WebP of a sensible size, checked as an image
before it is kept; served to anyone with an ETag; gone when deleted; kept across a
restart. Every bad upload is a 4xx with a reason."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from api.conftest import SECRET, Account, Harness, assert_error, running_harness


def image(codec: str, width: int = 64, height: int = 48) -> bytes:
    """A real image of that size, encoded by FFmpeg."""
    pix_fmt = {"png": "rgb24", "mjpeg": "yuvj420p", "libwebp": "yuv420p"}[codec]
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    pixels = np.full((height, width, 3), 120, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format=pix_fmt)
    packets = [*context.encode(frame), *context.encode(None)]
    return b"".join(bytes(p) for p in packets)


async def put(h: Harness, who: Account | None, data: bytes, content_type: str) -> httpx.Response:
    headers = {"Content-Type": content_type, **(who.headers if who else {})}
    return await h.client().put("/api/v1/auth/me/avatar", content=data, headers=headers)


@pytest.mark.parametrize(
    ("codec", "content_type"),
    [("png", "image/png"), ("mjpeg", "image/jpeg"), ("libwebp", "image/webp")],
)
async def test_a_picture_is_kept_and_served(codec: str, content_type: str, tmp_path: Path) -> None:
    data = image(codec)
    async with running_harness(tmp_path) as h:
        lina = await h.account("lina")
        assert (await put(h, lina, data, content_type)).status_code == 204
        got = await h.client().get(f"/api/v1/users/{lina.id}/avatar")
        again = await h.client().get(
            f"/api/v1/users/{lina.id}/avatar", headers={"If-None-Match": got.headers["etag"]}
        )
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == content_type
    assert got.headers["x-content-type-options"] == "nosniff"
    assert again.status_code == 304


async def test_bad_pictures_are_refused_with_a_reason(tmp_path: Path) -> None:
    png = image("png")
    async with running_harness(tmp_path) as h:
        lina = await h.account("lina")
        cases = [
            (png, "text/plain", 415, "unsupported_media_type"),
            (png, "image/gif", 415, "unsupported_media_type"),
            (png, "image/jpeg", 400, "bad_image"),  # says JPEG, is a PNG
            (png[: len(png) // 2], "image/png", 400, "bad_image"),  # cut short
            (png[:8] + b"<script>alert(1)</script>" * 4, "image/png", 400, "bad_image"),
            (b"", "image/png", 400, "bad_image"),
            (image("png", 8, 8), "image/png", 400, "bad_image_size"),
            (image("png", 2000, 40), "image/png", 400, "bad_image_size"),
            (b"\x89PNG\r\n\x1a\n" + bytes(70_000), "image/png", 413, None),
        ]
        answers = [await put(h, lina, data, kind) for data, kind, _, _ in cases]
        anonymous = await put(h, None, png, "image/png")
        nothing = await h.client().get(f"/api/v1/users/{lina.id}/avatar")
    for (_, kind, status, code), answer in zip(cases, answers, strict=True):
        assert answer.status_code == status, (kind, answer.text)
        assert_error(answer, status, code)
    assert_error(anonymous, 401)
    assert_error(nothing, 404, "avatar_not_found")  # nothing bad was kept


async def test_a_deleted_picture_is_gone_and_a_kept_one_outlives_a_restart(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path) as h:
        lina, omar = await h.account("lina"), await h.account("omar")
        assert (await put(h, lina, image("png"), "image/png")).status_code == 204
        assert (await put(h, omar, image("png"), "image/png")).status_code == 204
        deleted = await h.client().delete("/api/v1/auth/me/avatar", headers=omar.headers)
        twice = await h.client().delete("/api/v1/auth/me/avatar", headers=omar.headers)
    async with running_harness(tmp_path, secret_key=SECRET) as h:
        kept = await h.client().get(f"/api/v1/users/{lina.id}/avatar")
        gone = await h.client().get(f"/api/v1/users/{omar.id}/avatar")
    assert deleted.status_code == 204
    assert_error(twice, 404, "avatar_not_found")
    assert kept.status_code == 200
    assert_error(gone, 404, "avatar_not_found")
