"""Listener glass-to-glass latency (LL-HLS) and speaker-to-speaker latency (mix-minus).

One `majlis serve` pinned to CPU 0; everything else (this process: two WebRTC speakers and
an LL-HLS follower; an ffmpeg) pinned to CPU 1. Per run, in one space, side by side:

- speaker A (the host) sends a 1 kHz tone in bursts (0.1 s on / 0.9 s off, -10 dBFS) with
  `ToneTrack`; the send time of burst k is `started_at + k` (monotonic, mapped to the wall
  clock).
- an LL-HLS follower behaves like a real LL-HLS player: blocking playlist reloads
  (`_HLS_msn`/`_HLS_part`), and it requests every part as soon as it is listed or hinted
  (EXT-X-PRELOAD-HINT; the origin holds that request until the part is written). It stamps
  the wall time when each part's last byte arrived and decodes the parts afterwards (PyAV,
  FFmpeg's AAC decoder, one continuous decoder). For each burst onset found in the audio:
  arrival latency = arrival of the onset's part + the onset's offset inside the part - send
  time. Player latency = arrival latency + the playlist's PART-HOLD-BACK (what a player
  that follows the spec's hold-back adds).
- ffmpeg (segment-based HLS reader, not LL) reads the same playlist with `silencedetect`;
  its latency = when ffmpeg had decoded the onset + the onset's offset in its segment - send
  time (ffmpeg reads a whole segment at once, so this is its "arrival + offset" too).
- speaker B (an approved speaker sending silence) receives its mix-minus: every RTP packet
  and every decoded frame is stamped on arrival. Latency at the network = arrival of the
  packet carrying the onset + offset in the frame - send time; after aiortc's receive buffer
  (what `majlis speak --record-mix` hears) = when the decoded frame came out of the track.

Which burst an onset belongs to is decided from the server's EXT-X-PROGRAM-DATE-TIME (to the
nearest second only); the latency itself is measured with this process's clocks.

    .venv/bin/python bench/latency.py --runs 3 --seconds 40

Prints JSON: per-run numbers, medians over runs, and percentiles pooled over all onsets.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from majlis.media.formats.fmp4 import parse_fragments
from majlis.media.rtc.speaker_client import SpeakerClient
from majlis.media.rtc.tone import ToneTrack
from mediabench import (
    CLEAN_OTHERS_PCT,
    Api,
    CpuWindow,
    Server,
    find_onsets,
    is_clean,
    machine,
    median,
    ms,
    offer_sender,
    pct,
    pin_self_to_client_cpu,
    running_server,
    wait_for_quiet,
)

RATE = 48_000
TONE_HZ = 1000.0
TONE_DBFS = -10.0
BURST = (0.1, 0.9)
PERIOD = BURST[0] + BURST[1]
# -20 dBFS: 10 dB under the tone's peak, far above codec noise in the gaps.
THRESHOLD = 0.1
MIN_SILENCE = int(0.5 * RATE)
# Expected speaker → mixer delay, only used to pick the burst number (nearest second).
PICK_BIAS = 0.1
_PART = re.compile(r"p(\d+)-(\d+)-(\d+)\.m4s")
_ATTR = re.compile(r'([A-Z-]+)=("[^"]*"|[^,]*)')


def wall_offset() -> float:
    """time.time() - time.monotonic(), read as tightly as possible."""
    best = (1.0, 0.0)
    for _ in range(20):
        a = time.monotonic()
        w = time.time()
        b = time.monotonic()
        if b - a < best[0]:
            best = (b - a, w - (a + b) / 2)
    return best[1]


# --- the LL-HLS follower -------------------------------------------------------------------


@dataclass
class PlaylistView:
    parts: list[str]
    part_pdt: dict[str, float]
    hint: str | None
    part_hold_back: float
    part_target: float
    ended: bool


def parse_playlist(text: str) -> PlaylistView:
    parts: list[str] = []
    pdts: dict[str, float] = {}
    hint: str | None = None
    hold_back = part_target = 0.0
    pdt = 0.0
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = datetime.fromisoformat(line.split(":", 1)[1]).timestamp()
        elif line.startswith("#EXT-X-PART:"):
            attrs = dict(_ATTR.findall(line.split(":", 1)[1]))
            uri = attrs["URI"].strip('"')
            parts.append(uri)
            pdts[uri] = pdt
            pdt += float(attrs["DURATION"])
        elif line.startswith("#EXTINF:"):
            pass  # a segment's PDT line always comes before its parts
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            hint = dict(_ATTR.findall(line.split(":", 1)[1]))["URI"].strip('"')
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            attrs = dict(_ATTR.findall(line.split(":", 1)[1]))
            hold_back = float(attrs.get("PART-HOLD-BACK", "0"))
        elif line.startswith("#EXT-X-PART-INF:"):
            part_target = float(dict(_ATTR.findall(line.split(":", 1)[1]))["PART-TARGET"])
    return PlaylistView(parts, pdts, hint, hold_back, part_target, "#EXT-X-ENDLIST" in text)


@dataclass
class FetchedPart:
    name: str
    requested: float
    arrived: float
    data: bytes


@dataclass
class LlhlsFollower:
    """One listener that follows the live edge like an LL-HLS player."""

    http: httpx.AsyncClient
    url: str  # playlist URL (the playback token is in its path), without query
    fetched: list[FetchedPart] = field(default_factory=list)
    pdt: dict[str, float] = field(default_factory=dict)
    init: bytes = b""
    view: PlaylistView | None = None
    playlist_requests: int = 0
    errors: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _base(self) -> str:
        return self.url.rsplit("/", 1)[0]

    async def _playlist(self, hint: str | None) -> PlaylistView:
        params: dict[str, str] = {}
        if hint is not None:
            match = _PART.fullmatch(hint)
            if match:
                params |= {"_HLS_msn": match.group(2), "_HLS_part": match.group(3)}
        while True:
            answer = await self.http.get(self.url, params=params)
            self.playlist_requests += 1
            if answer.status_code == 200:
                break
            self.errors += 1
            await asyncio.sleep(0.05)
        view = parse_playlist(answer.text)
        self.pdt.update(view.part_pdt)
        self.view = view
        self._changed.set()
        self._changed = asyncio.Event()
        return view

    async def run(self, stop: asyncio.Event) -> None:
        view = await self._playlist(None)
        answer = await self.http.get(f"{self._base()}/init.mp4")
        answer.raise_for_status()
        self.init = answer.content
        reloader = asyncio.create_task(self._reload(stop))
        try:
            # Start at the first part that does not exist yet: earlier ones would arrive
            # "instantly" and say nothing about latency.
            name = view.hint
            while name is not None and not stop.is_set():
                requested = time.time()
                answer = await self.http.get(f"{self._base()}/{name}")
                arrived = time.time()
                if answer.status_code != 200:
                    self.errors += 1
                    await self._wait_change(stop)
                    continue
                self.fetched.append(FetchedPart(name, requested, arrived, answer.content))
                name = await self._successor(name, stop)
        finally:
            reloader.cancel()
            await asyncio.gather(reloader, return_exceptions=True)

    async def _reload(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            view = self.view
            if view is None or view.ended:
                return
            await self._playlist(view.hint)

    async def _wait_change(self, stop: asyncio.Event) -> None:
        changed = self._changed
        waiter = asyncio.create_task(changed.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()

    async def _successor(self, name: str, stop: asyncio.Event) -> str | None:
        while not stop.is_set():
            view = self.view
            if view is not None:
                if name in view.parts:
                    index = view.parts.index(name)
                    if index + 1 < len(view.parts):
                        return view.parts[index + 1]
                    if view.hint is not None and view.hint != name:
                        return view.hint
                if view.ended:
                    return None
            await self._wait_change(stop)
        return None


# --- speaker B: stamps every packet and frame of its mix-minus ----------------------------


class TimedSpeaker(SpeakerClient):
    """A SpeakerClient that keeps, for its received mix-minus, the arrival wall time of each
    RTP packet (by RTP timestamp) and of each decoded frame (by pts)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.packets: list[tuple[int, float]] = []
        self.frames: list[tuple[float, int, npt.NDArray[np.float32]]] = []

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self._recorder is not None:
            return
        for receiver in self.peer_connection.getReceivers():
            if receiver.track is track:
                original = receiver._handle_rtp_packet

                async def stamped(
                    packet: Any, arrival_time_ms: int, original: Any = original
                ) -> None:
                    self.packets.append((packet.timestamp, time.time()))
                    await original(packet, arrival_time_ms)

                # aiortc's transport calls this per RTP packet: stamp, then hand on.
                setattr(receiver, "_handle_rtp_packet", stamped)  # noqa: B010
        self._recorder = asyncio.get_running_loop().create_task(self._stamp(track))

    async def _stamp(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                arrived = time.time()
                if isinstance(frame, av.AudioFrame) and frame.pts is not None:
                    self.frames.append((arrived, int(frame.pts), _mono(frame)))
        except MediaStreamError:
            pass


def _mono(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    first = data[0] if frame.format.is_planar else data.reshape(-1)[::channels]
    scale = 32768.0 if first.dtype == np.int16 else 1.0
    return (first.astype(np.float32) / scale).astype(np.float32)


# --- ffmpeg, the segment-based comparison ---------------------------------------------------


@dataclass
class FfmpegReader:
    process: subprocess.Popen[bytes]
    ends: list[tuple[float, float]] = field(default_factory=list)  # (wall, media seconds)
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, url: str) -> FfmpegReader:
        cmd = [
            "taskset",
            "-c",
            "1",
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "info",
            "-live_start_index",
            "-1",
            "-copyts",
            "-i",
            url,
            "-af",
            "silencedetect=n=-30dB:d=0.3",
            "-f",
            "null",
            "-",
        ]
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        reader = cls(process)
        threading.Thread(target=reader._read, daemon=True).start()
        return reader

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            now = time.time()
            line = raw.decode(errors="replace").rstrip()
            match = re.search(r"silence_end: (-?[\d.]+)", line)
            if match:
                self.ends.append((now, float(match.group(1))))
            elif len(self.lines) < 200:
                self.lines.append(line)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# --- analysis ------------------------------------------------------------------------------


@dataclass
class Onset:
    k: int
    latency: float
    capture: float = 0.0  # send → mixer, from the playlist's PDT (listener onsets only)


def decode_parts(
    follower: LlhlsFollower,
) -> list[tuple[FetchedPart, int, npt.NDArray[np.float32]]]:
    """(part, tfdt, decoded mono samples) in fetch order, one continuous AAC decoder."""
    with av.open(io.BytesIO(follower.init + follower.fetched[0].data)) as probe:
        extradata = probe.streams.audio[0].codec_context.extradata
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = extradata
    out: list[tuple[FetchedPart, int, npt.NDArray[np.float32]]] = []
    expected: int | None = None
    for part in follower.fetched:
        (fragment,) = parse_fragments(part.data)
        if expected is not None and fragment.base_decode_time != expected:
            raise RuntimeError(f"gap before {part.name}: {fragment.base_decode_time}≠{expected}")
        chunks: list[npt.NDArray[np.float32]] = []
        offset = fragment.data_start
        for size in fragment.sample_sizes:
            for frame in decoder.decode(av.Packet(part.data[offset : offset + size])):
                chunks.append(frame.to_ndarray()[0].astype(np.float32))
            offset += size
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        out.append((part, fragment.base_decode_time, samples))
        expected = fragment.base_decode_time + len(fragment.sample_sizes) * 1024
    return out


def listener_onsets(
    follower: LlhlsFollower, send0: float, period: float = PERIOD
) -> tuple[list[Onset], list[tuple[float, int]], int]:
    """Onsets with arrival latency (and speaker→mixer per PDT); (media s, k) per onset;
    the decode time at which the first fetched part's segment started. Bursts start every
    `period` seconds from `send0`."""
    decoded = decode_parts(follower)
    audio = np.concatenate([samples for _, _, samples in decoded])
    starts = np.cumsum([0] + [len(samples) for _, _, samples in decoded])
    onsets: list[Onset] = []
    media: list[tuple[float, int]] = []
    for index in find_onsets(audio, THRESHOLD, MIN_SILENCE):
        j = int(np.searchsorted(starts, index, side="right") - 1)
        part, tfdt, _ = decoded[j]
        offset = (index - starts[j]) / RATE
        pdt = follower.pdt.get(part.name)
        if pdt is None:
            continue
        capture = pdt + offset
        k = round((capture - send0 - PICK_BIAS) / period)
        sent = send0 + k * period
        onsets.append(Onset(k, part.arrived + offset - sent, capture - sent))
        media.append((tfdt / RATE + offset, k))
    first, tfdt, samples = decoded[0]
    match = _PART.fullmatch(first.name)
    index_in_segment = int(match.group(3)) if match else 0
    return onsets, media, tfdt - index_in_segment * len(samples)


def ffmpeg_onsets(
    reader: FfmpegReader,
    media_k: list[tuple[float, int]],
    send0: float,
    segment_origin: int,
    segment_samples: int,
) -> tuple[list[Onset], float | None]:
    """Match ffmpeg's onsets (media time, with -copyts) to the follower's by media time."""
    if not media_k:
        return [], None
    known = np.array([m for m, _ in media_k])
    ks = [k for _, k in media_k]
    onsets: list[Onset] = []
    shifts: list[float] = []
    for wall, at in reader.ends:
        nearest = int(np.argmin(np.abs(known - at)))
        shift = at - known[nearest]
        if abs(shift) < 0.2:
            k = ks[nearest]
            shifts.append(shift)
        else:
            # Before the follower started: whole periods earlier on the same timeline.
            k = ks[nearest] + round((at - known[nearest]) / PERIOD)
        in_segment = ((at * RATE - segment_origin) % segment_samples) / RATE
        onsets.append(Onset(k, wall + in_segment - (send0 + k * PERIOD)))
    return onsets, (float(np.median(shifts)) if shifts else None)


def speaker_onsets(speaker: TimedSpeaker, send0: float) -> tuple[list[Onset], list[Onset], float]:
    """(at the network, after aiortc's receive buffer), and the share of frames whose packet
    was matched."""
    frames = sorted(speaker.frames, key=lambda f: f[1])
    if not frames or not speaker.packets:
        return [], [], 0.0
    first_ts = speaker.packets[0][0]
    packet_at: dict[int, float] = {}
    for ts, wall in speaker.packets:
        packet_at.setdefault((ts - first_ts) % 2**32, wall)
    base = frames[0][1]
    length = frames[-1][1] - base + len(frames[-1][2])
    audio = np.zeros(length, dtype=np.float32)
    matched = 0
    for _, pts, samples in frames:
        audio[pts - base : pts - base + len(samples)] = samples
        matched += pts in packet_at
    network: list[Onset] = []
    track: list[Onset] = []
    for index in find_onsets(audio, THRESHOLD, MIN_SILENCE):
        located = _frame_offset(frames, base, int(index))
        if located is None:
            continue
        arrived, offset, pts = located
        k = round((arrived + offset - send0 - PICK_BIAS) / PERIOD)
        sent = send0 + k * PERIOD
        track.append(Onset(k, arrived + offset - sent))
        packet = packet_at.get(pts)
        if packet is not None:
            network.append(Onset(k, packet + offset - sent))
    return network, track, matched / len(frames)


def _frame_offset(
    frames: list[tuple[float, int, npt.NDArray[np.float32]]], base: int, index: int
) -> tuple[float, float, int] | None:
    """(arrival of the frame holding sample `index`, the sample's offset in s, frame pts)."""
    position = base + index
    lo, hi = 0, len(frames)
    while lo < hi:
        mid = (lo + hi) // 2
        if frames[mid][1] <= position:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return None
    arrived, pts, samples = frames[lo - 1]
    if position >= pts + len(samples):
        return None
    return arrived, (position - pts) / RATE, pts


@dataclass
class RunOutcome:
    result: dict[str, Any]
    listener: list[Onset]
    network: list[Onset]
    track: list[Onset]
    ffmpeg: list[Onset]


def within(
    onsets: list[Onset], send0: float, start: float, end: float, period: float = PERIOD
) -> list[Onset]:
    """Only bursts sent inside the measurement window (not during connection set-up, and
    not ones a reader found already published when it started)."""
    return [o for o in onsets if start <= send0 + o.k * period <= end]


def summary(onsets: list[Onset], add: float = 0.0) -> dict[str, Any]:
    values = [o.latency + add for o in onsets]
    return {
        "onsets": len(values),
        "p50_ms": ms(pct(values, 50)),
        "p95_ms": ms(pct(values, 95)),
        "min_ms": ms(min(values)) if values else None,
        "max_ms": ms(max(values)) if values else None,
    }


# --- one run -------------------------------------------------------------------------------


async def one_run(
    server: Server, api: Api, run: int, seconds: float, with_ffmpeg: bool
) -> RunOutcome:
    space = api.create_space("host", f"latency {run}")
    sid = space["id"]
    api.stage(sid, "host", ["guest"])
    offset = wall_offset()
    tone = ToneTrack(TONE_HZ, TONE_DBFS, burst=BURST)
    speaker_a = SpeakerClient(offer_sender(server.url, api.tokens["host"], sid), tone)
    speaker_b = TimedSpeaker(
        offer_sender(server.url, api.tokens["guest"], sid), ToneTrack(440.0, -200.0)
    )
    url, _ = api.playback(sid)
    stop = asyncio.Event()
    reader: FfmpegReader | None = None
    try:
        await speaker_a.connect()
        await speaker_b.connect()
        await speaker_a.wait_connected(20)
        await speaker_b.wait_connected(20)
        await asyncio.sleep(2.0)  # jitter buffers settle, the packager has parts
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=4)) as http:
            follower = LlhlsFollower(http, url)
            if with_ffmpeg:
                reader = FfmpegReader.start(url)
            pids = {"server": server.pid, "client": os.getpid()}
            if reader is not None:
                pids["ffmpeg"] = reader.process.pid
            window = CpuWindow(pids)
            window_start = time.time()
            task = asyncio.create_task(follower.run(stop))
            await asyncio.sleep(seconds)
            window_end = time.time()
            stop.set()
            cpu = window.finish()
            await asyncio.wait_for(task, 15)
    finally:
        if reader is not None:
            reader.stop()
        await speaker_a.close()
        await speaker_b.close()
        api.end_space("host", sid)
    if tone.started_at is None:
        raise RuntimeError("speaker A never sent a frame")
    send0 = tone.started_at + offset
    listener, media_k, segment_origin = listener_onsets(follower, send0)
    # The last bursts need time to reach everyone (ffmpeg: up to ~4.5 s): judge only those
    # sent at least 5 s before the end.
    cut = window_end - 5.0
    listener = within(listener, send0, window_start, cut)
    capture_delays = [o.capture for o in listener]
    view = follower.view
    hold_back = view.part_hold_back if view else 0.0
    part_target = view.part_target if view else 0.0
    result: dict[str, Any] = {
        "run": run,
        "cpu": cpu,
        "part_hold_back_s": hold_back,
        "part_target_s": part_target,
        "listener_arrival": summary(listener),
        "listener_player": summary(listener, hold_back),
        "speaker_to_mixer_per_pdt": {
            "p50_ms": ms(pct(capture_delays, 50)),
            "p95_ms": ms(pct(capture_delays, 95)),
        },
        "follower": {
            "parts": len(follower.fetched),
            "playlist_requests": follower.playlist_requests,
            "errors": follower.errors,
        },
    }
    network, track, matched = speaker_onsets(speaker_b, send0)
    network = within(network, send0, window_start, cut)
    track = within(track, send0, window_start, cut)
    result["speaker_to_speaker_network"] = summary(network)
    result["speaker_to_speaker_track"] = summary(track)
    result["speaker_b_frames_matched_to_packets"] = round(matched, 3)
    ff: list[Onset] = []
    if reader is not None:
        parts_per_segment = _parts_per_segment(follower)
        segment_samples = parts_per_segment * round(part_target * RATE / 1024) * 1024
        ff, shift = ffmpeg_onsets(reader, media_k, send0, segment_origin, segment_samples)
        ff = within(ff, send0, window_start, cut)
        result["ffmpeg"] = summary(ff)
        result["ffmpeg_timeline_shift_ms"] = ms(shift)
        if not ff:
            result["ffmpeg_log"] = reader.lines[-20:]
    return RunOutcome(result, listener, network, track, ff)


def _parts_per_segment(follower: LlhlsFollower) -> int:
    most = 0
    for part in follower.fetched:
        match = _PART.fullmatch(part.name)
        if match:
            most = max(most, int(match.group(3)) + 1)
    return most


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    outcomes: list[RunOutcome] = []
    with running_server() as server:
        api = Api(server)
        api.register("host")
        api.register("guest")
        for run in range(args.runs):
            quiet = wait_for_quiet(args.load_threshold, args.max_wait)
            outcome = await one_run(server, api, run, args.seconds, not args.no_ffmpeg)
            outcome.result["load_before"] = quiet
            outcome.result["clean"] = is_clean(outcome.result["cpu"])
            runs.append(outcome.result)
            outcomes.append(outcome)
            print(json.dumps(outcome.result), file=sys.stderr, flush=True)
        api.close()
    hold_back = runs[0]["part_hold_back_s"]

    clean = [r for r in runs if r["clean"]]

    def medians(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [
            "listener_arrival",
            "listener_player",
            "speaker_to_speaker_network",
            "speaker_to_speaker_track",
            "ffmpeg",
        ]
        out: dict[str, Any] = {"runs": len(chosen)}
        for key in keys:
            if any(key in r for r in chosen):
                out[key] = {
                    stat: median([r[key][stat] for r in chosen if key in r])
                    for stat in ("p50_ms", "p95_ms")
                }
        return out

    def pooled_summary(chosen: list[RunOutcome]) -> dict[str, Any]:
        def cat(get: Any) -> list[Onset]:
            return [o for outcome in chosen for o in get(outcome)]

        return {
            "listener_arrival": summary(cat(lambda o: o.listener)),
            "listener_player": summary(cat(lambda o: o.listener), hold_back),
            "speaker_to_speaker_network": summary(cat(lambda o: o.network)),
            "speaker_to_speaker_track": summary(cat(lambda o: o.track)),
            "ffmpeg": summary(cat(lambda o: o.ffmpeg)),
        }

    return {
        "benchmark": "latency",
        "machine": machine(),
        "args": vars(args),
        "burst": {"tone_hz": TONE_HZ, "level_dbfs": TONE_DBFS, "on_off_s": BURST},
        "clean_means": f"other processes used <= {CLEAN_OTHERS_PCT}% of a core in the window",
        "medians_over_clean_runs": medians(clean),
        "medians_over_all_runs": medians(runs),
        "pooled_clean": pooled_summary([o for o in outcomes if o.result["clean"]]),
        "pooled_all": pooled_summary(outcomes),
        "goals": {"listener_p95_ms": 1500, "speaker_to_speaker_ms": 250},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0, help="measurement per run")
    parser.add_argument("--no-ffmpeg", action="store_true", help="skip the ffmpeg row")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=180.0, help="s to wait for quiet")
    args = parser.parse_args()
    if args.runs < 1 or not 5 <= args.seconds <= 600:
        raise SystemExit("--runs ≥ 1 and 5 ≤ --seconds ≤ 600")
    pin_self_to_client_cpu()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
