"""`majlis speak`: join a space's stage and send a tone or an audio file over WebRTC."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

from majlis.client.api import ApiClient, ApiError
from majlis.media.speaker_client import SpeakerClient
from majlis.media.tone import ToneTrack

__all__ = ["SpeakOptions", "speak"]


@dataclass(frozen=True)
class SpeakOptions:
    server: str
    space_id: str
    username: str
    password: str
    tone: float | None = 440.0
    level_db: float = -20.0
    burst: tuple[float, float] | None = None
    file: Path | None = None
    duration: float | None = None
    record_mix: Path | None = None
    ask: bool = False
    ask_timeout: float = 120.0


def _source(options: SpeakOptions) -> MediaStreamTrack:
    if options.file is not None:
        player = MediaPlayer(str(options.file))
        if player.audio is None:
            raise SystemExit(f"{options.file} has no audio")
        return player.audio
    return ToneTrack(options.tone or 440.0, options.level_db, burst=options.burst)


async def _wait_on_stage(api: ApiClient, space_id: str) -> None:
    while True:
        stage = await api.call("GET", f"/api/v1/spaces/{space_id}/participants")
        if any(p["user_id"] == api.member for p in stage["participants"]):
            return
        await asyncio.sleep(1.0)


async def speak(options: SpeakOptions) -> int:
    async with ApiClient(options.server) as api:
        await api.login(options.username, options.password)
        space_id = options.space_id
        if options.ask:
            with contextlib.suppress(ApiError):
                await api.call("POST", f"/api/v1/spaces/{space_id}/requests")
            print("asked to speak; waiting for approval", flush=True)
            try:
                async with asyncio.timeout(options.ask_timeout):
                    await _wait_on_stage(api, space_id)
            except TimeoutError:
                raise SystemExit("nobody approved the request to speak in time") from None

        async def send_offer(sdp: str) -> str:
            answer = await api.call(
                "POST", f"/api/v1/spaces/{space_id}/rtc/offer", {"sdp": sdp, "type": "offer"}
            )
            return str(answer["sdp"])

        client = SpeakerClient(send_offer, _source(options))
        try:
            await client.connect()
            await client.wait_connected(20.0)
            print(f"speaking in {space_id} (connected)", flush=True)
            if options.duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(options.duration)
        finally:
            if options.record_mix is not None:
                client.save_wav(options.record_mix)
            await client.close()
    return 0
