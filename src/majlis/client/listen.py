"""`majlis listen`: play a live space or a replay, or record it to a WAV file.

Decoding uses FFmpeg's own HLS reader (through PyAV), i.e. a player we did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import av

from majlis.client.api import ApiClient, ApiError

__all__ = ["ListenOptions", "listen"]

HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class ListenOptions:
    server: str
    space_id: str
    out: Path | None = None
    duration: float | None = None
    username: str | None = None
    password: str | None = None


async def _playlist_url(api: ApiClient, space_id: str) -> tuple[str, str | None]:
    """(url, playback token) for a live space, or the replay's URL for an ended one."""
    space = await api.call("GET", f"/api/v1/spaces/{space_id}")
    if space["state"] == "ended":
        return f"{api.server}/hls/{space_id}/index.m3u8", None
    admitted = await api.join(space_id)
    token = admitted["playback_token"]
    return f"{admitted['playback_url']}?token={token}", token


def decode_to_wav(url: str, out: Path, duration: float | None, stop: threading.Event) -> float:
    """Decode `url` to 48 kHz mono s16 WAV; returns seconds written."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    written = 0
    limit = None if duration is None else int(duration * 48000)
    with (
        av.open(url, options={"live_start_index": "-1"}) as container,
        wave.open(str(out), "wb") as wav,
    ):
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        for frame in container.decode(audio=0):
            for chunk in resampler.resample(frame):
                data = chunk.to_ndarray().reshape(-1)
                if limit is not None:
                    data = data[: max(0, limit - written)]
                wav.writeframes(data.astype("<i2").tobytes())
                written += len(data)
            if stop.is_set() or (limit is not None and written >= limit):
                break
    return written / 48000


async def _heartbeat(api: ApiClient, space_id: str, token: str) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        with contextlib.suppress(ApiError):
            answer = await api.call(
                "POST", f"/api/v1/spaces/{space_id}/heartbeat", {"playback_token": token}
            )
            token = answer["playback_token"]


async def listen(options: ListenOptions) -> int:
    async with ApiClient(options.server) as api:
        if options.username and options.password:
            await api.login(options.username, options.password)
        else:
            await api.anonymous()
        url, token = await _playlist_url(api, options.space_id)
        beat = asyncio.create_task(_heartbeat(api, options.space_id, token)) if token else None
        stop = threading.Event()
        try:
            if options.out is not None:
                seconds = await asyncio.to_thread(
                    decode_to_wav, url, options.out, options.duration, stop
                )
                print(f"wrote {seconds:.1f} s to {options.out}", flush=True)
            else:
                await asyncio.to_thread(_play, url, options.duration)
        finally:
            stop.set()
            if beat is not None:
                beat.cancel()
            with contextlib.suppress(ApiError):
                if token:
                    await api.call("POST", f"/api/v1/spaces/{options.space_id}/leave")
    return 0


def _play(url: str, duration: float | None) -> None:
    player = shutil.which("ffplay")
    if player is None:
        raise SystemExit("no audio player here (ffplay); use --out file.wav to record")
    cmd = [player, "-nodisp", "-autoexit", "-loglevel", "warning"]
    if duration is not None:
        cmd += ["-t", str(duration)]
    subprocess.run([*cmd, url], check=False)
