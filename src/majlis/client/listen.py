"""`majlis listen`: play a live space or a replay, or record it to a WAV file; with
`--captions`, print its live captions as they come (client/captions.py).

Decoding uses FFmpeg's own HLS reader (through PyAV), i.e. a player we did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import httpx

from majlis.client.api import ApiClient, ApiError
from majlis.client.captions import CaptionFollower, CaptionsUnavailable, check_captions
from majlis.client.relay import TokenRelay
from majlis.client.retry import RetryBudget, retry_delay

__all__ = ["CaptionsUnavailable", "ListenOptions", "NoAudioYet", "heartbeat", "listen"]

HEARTBEAT_SECONDS = 15.0
HEARTBEAT_RETRY_BASE_S = 1.0
# A live space's first segment takes a segment's length after its start; a space whose
# media node is being started or moved takes longer.
FIRST_AUDIO_PATIENCE_S = 30.0
FIRST_AUDIO_POLL_S = 0.5


class NoAudioYet(Exception):
    """The space's playlist listed no audio within the patience given."""


@dataclass(frozen=True)
class ListenOptions:
    server: str
    space_id: str
    out: Path | None = None
    duration: float | None = None
    username: str | None = None
    password: str | None = None
    captions: bool = False  # print the live captions' lines on stdout


@dataclass(frozen=True)
class _Playback:
    url: str
    token: str | None = None  # None for a replay
    renew_every: float = HEARTBEAT_SECONDS


async def _playback(api: ApiClient, space_id: str) -> _Playback:
    """The live space's playlist and token, or the replay's playlist for an ended one."""
    space = await api.call("GET", f"/api/v1/spaces/{space_id}")
    if space["state"] == "ended":
        return _Playback(f"{api.server}/hls/{space_id}/index.m3u8")
    admitted = await api.join(space_id)
    # Renew well before the token expires, however short the server's playback_ttl.
    left = float(admitted["expires_at"]) - time.time()
    renew = max(1.0, min(HEARTBEAT_SECONDS, left / 3))
    return _Playback(admitted["playback_url"], admitted["playback_token"], renew)


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


async def wait_for_audio(
    url: str,
    *,
    patience: float = FIRST_AUDIO_PATIENCE_S,
    poll: float = FIRST_AUDIO_POLL_S,
    http: httpx.AsyncClient | None = None,
) -> None:
    """Return once the playlist at `url` lists a whole segment.

    FFmpeg opens a live playlist that lists none yet (a space's first seconds) as a
    container without streams, and PyAV then fails with an IndexError; ffplay gives up the
    same way. Raises NoAudioYet after `patience` seconds."""
    deadline = time.monotonic() + patience
    async with contextlib.AsyncExitStack() as stack:
        client = http
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        while True:
            with contextlib.suppress(httpx.TransportError):
                answer = await client.get(url)
                if answer.status_code == 200 and _lists_a_segment(answer.text):
                    return
            if time.monotonic() + poll > deadline:
                raise NoAudioYet(
                    f"the space has had no audio for {patience:.0f} s; try again later"
                )
            await asyncio.sleep(poll)


def _lists_a_segment(playlist: str) -> bool:
    """A URI line: a segment, or a variant of a multivariant playlist (whose own
    segments FFmpeg waits for itself)."""
    return any(line.strip() and not line.startswith("#") for line in playlist.splitlines())


async def heartbeat(
    api: ApiClient,
    space_id: str,
    relay: TokenRelay,
    every: float,
    on_renewed: Callable[[], None] | None = None,
) -> None:
    """Renew the playback token (and stay counted) every `every` seconds, forever.

    A beat the server refused for overload, or that could not reach it, is tried again
    sooner (its Retry-After, else full jitter from 1 s up to `every`) when the client's
    retry budget holds a retry, else at the next beat."""
    wait = every
    failures = 0
    retrying = False
    path = f"/api/v1/spaces/{space_id}/heartbeat"
    while True:
        await asyncio.sleep(wait)
        try:
            answer = await api.call(
                "POST", path, {"playback_token": relay.token}, retries=0, first=not retrying
            )
        except (ApiError, httpx.TransportError) as error:
            if isinstance(error, ApiError) and error.status == 401:
                # The playback token ran out while no beat could renew it (an outage
                # longer than its lifetime): join again for a new one.
                await _rejoin(api, space_id, relay, on_renewed)
                failures, wait, retrying = 0, every, False
                continue
            if isinstance(error, ApiError) and error.status not in (429, 503):
                failures, wait, retrying = 0, every, False  # refused: the next beat says more
                continue
            hinted = error.retry_after if isinstance(error, ApiError) else None
            retrying = api.budget.try_retry()
            if retrying:
                delay = retry_delay(
                    failures, base=HEARTBEAT_RETRY_BASE_S, cap=every, retry_after=hinted
                )
                wait = min(every, delay)
                failures += 1
            else:
                failures, wait = 0, every
            continue
        relay.token = answer["playback_token"]
        failures, wait, retrying = 0, every, False
        if on_renewed is not None:
            on_renewed()


async def _rejoin(
    api: ApiClient, space_id: str, relay: TokenRelay, on_renewed: Callable[[], None] | None
) -> None:
    try:
        admitted = await api.join(space_id)
    except ApiError:
        return  # ended, or banned: the player hears the end; the next beat tries again
    relay.token = admitted["playback_token"]
    if on_renewed is not None:
        on_renewed()


async def listen(options: ListenOptions) -> int:
    # One retry budget for everything this listener sends.
    async with ApiClient(options.server, budget=RetryBudget()) as api:
        if options.username and options.password:
            await api.login(options.username, options.password)
        else:
            await api.anonymous()
        if options.captions:
            # Refused before anything plays (CaptionsUnavailable), with the reason.
            await check_captions(api, options.space_id)
        playback = await _playback(api, options.space_id)
        url, token = playback.url, playback.token
        relay, beat, captions = None, None, None
        if token:
            # The player keeps one URL; the relay puts the renewed token into each request.
            relay = TokenRelay(url, token, budget=api.budget)
            url = await relay.start()
            beat = asyncio.create_task(
                heartbeat(api, options.space_id, relay, playback.renew_every)
            )
            if options.captions:
                # Beside the audio, through the relay: the same token, the same retries.
                follower = CaptionFollower(api, options.space_id, relay.fetch)
                captions = asyncio.create_task(_follow(follower))
        stop = threading.Event()
        try:
            await wait_for_audio(url)
            if options.out is not None:
                seconds = await asyncio.to_thread(
                    decode_to_wav, url, options.out, options.duration, stop
                )
                print(f"wrote {seconds:.1f} s to {options.out}", flush=True)
            elif captions is not None and shutil.which("ffplay") is None:
                # Nothing here plays audio: the captions alone, for as long as asked.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(captions), options.duration)
            else:
                await asyncio.to_thread(_play, url, options.duration)
        finally:
            stop.set()
            if captions is not None:
                captions.cancel()
            if beat is not None:
                beat.cancel()
            if relay is not None:
                await relay.close()
            with contextlib.suppress(ApiError):
                if token:
                    await api.call("POST", f"/api/v1/spaces/{options.space_id}/leave")
    return 0


async def _follow(follower: CaptionFollower) -> None:
    """Captions refused once listening (a token refused, captions gone for good) say so
    and stop; the audio goes on as it can."""
    try:
        await follower.follow()
    except CaptionsUnavailable as refused:
        print(f"majlis: {refused}", file=sys.stderr, flush=True)


def _play(url: str, duration: float | None) -> None:
    player = shutil.which("ffplay")
    if player is None:
        raise SystemExit("no audio player here (ffplay); use --out file.wav to record")
    cmd = [player, "-nodisp", "-autoexit", "-loglevel", "warning"]
    if duration is not None:
        cmd += ["-t", str(duration)]
    subprocess.run([*cmd, url], check=False)
