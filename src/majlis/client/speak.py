"""`majlis speak`: join a space's stage and send a tone or an audio file over WebRTC.

It stays on: when the connection dies (the media node restarted, the network dropped) it
offers again with a jittered, growing wait, until the space ends, the speaker is taken off
the stage, or --duration is up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamTrack

from majlis.client.api import ApiClient, ApiError, jittered_wait
from majlis.media.rtc.speaker_client import SpeakerClient
from majlis.media.rtc.tone import ToneTrack

__all__ = ["SpeakOptions", "speak"]

# Answers to an offer that another try cannot change: bad offer, not on the stage or banned,
# no such space, the space is not live.
FINAL_STATUSES = (400, 401, 403, 404, 409, 413)
CONNECT_SECONDS = 20.0
# The first try again is quick (a node handing its spaces over, or restarting, is back
# within a second); later ones spread out, jittered, so a crowd does not come back in step.
RETRY_BASE, RETRY_CAP = 0.25, 20.0


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
            await _stay_on(client, space_id, options.duration)
        finally:
            if options.record_mix is not None:
                client.save_wav(options.record_mix)
            await client.close()
    return 0


async def _stay_on(client: SpeakerClient, space_id: str, duration: float | None) -> None:
    """Speak until `duration` is up (forever without one), reconnecting whenever the
    connection dies; returns early when the server says the speaker cannot speak here."""
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    failures = 0
    spoke = False
    while deadline is None or loop.time() < deadline:
        try:
            await (client.reconnect() if client.connections else client.connect())
            await client.wait_connected(CONNECT_SECONDS)
        except ApiError as error:
            if error.status in FINAL_STATUSES:
                if not spoke:
                    raise  # never spoke: the caller reports why, and the exit code says so
                print(f"stopped speaking in {space_id}: {error.reason}", flush=True)
                return
            reason = f"the server answered {error.status}: {error.reason}"
        except (TimeoutError, httpx.HTTPError, OSError) as error:
            reason = f"could not connect ({error!r})"
        else:
            print(f"speaking in {space_id} (connected{' again' if spoke else ''})", flush=True)
            spoke = True
            failures = 0
            lost = await _until(_stay_connected(client, space_id), deadline)
            if lost is None:
                return
            reason = lost
        wait = jittered_wait(failures, RETRY_BASE, RETRY_CAP)
        failures += 1
        print(f"{reason}; reconnecting in {wait:.1f} s", flush=True)
        if await _until(asyncio.sleep(wait, "slept"), deadline) is None:
            return


async def _stay_connected(client: SpeakerClient, space_id: str) -> str:
    """Until the connection is lost (the reason), moving to another media node whenever
    the current one hands the space over."""
    while True:
        lost = await client.wait_lost()
        if not client.asked_to_move:
            return lost
        try:
            await client.move(CONNECT_SECONDS)
        except (ApiError, TimeoutError, httpx.HTTPError, OSError) as error:
            # The old connection lasts until its node closes it; then the loop reconnects.
            print(f"could not move to another media node ({error!r})", flush=True)
        else:
            print(f"speaking in {space_id} (moved to another media node)", flush=True)


async def _until(waiting: Coroutine[Any, Any, str], deadline: float | None) -> str | None:
    """What `waiting` returns, or None once `deadline` (loop time) passes first."""
    if deadline is None:
        return await waiting
    try:
        async with asyncio.timeout_at(deadline):
            return await waiting
    except TimeoutError:
        return None
