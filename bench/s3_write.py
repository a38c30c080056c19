"""Time to store a recording's files durably: an S3 API (moto on loopback) against the
local disk, side by side.

A recording stores every finished segment before listing it (docs/architecture.md,
"Recordings in object storage"): `RecordingDir.add_segment` writes it durably on disk
(temp file, fsync, rename, directory fsync), PUTs it to the store, appends a fsynced line
to the journal, PUTs the journal's last chunk, and only then may the playlist list it.
The packager's writer thread does all of it between one part and the next.

The bytes are real: a recording is first made with the project's HlsPackager (default
layout: 12 AAC frames per part, 8 parts per 2.048 s segment, 64 kb/s; 20 s of a 440 Hz
tone under a little noise), and its segment, init.mp4 and journal line are what gets
written; the 1-hour playlist (what is stored when a life closes or the recording ends)
is rendered by the project's MediaPlaylist for 1,757 segments. The store is the
project's own chain, as a node builds it: RecordingMirror(PatientStore(S3Store)) over
obstore; the local side is the project's write_durably, or the journal append + fsync of
RecordingDir. Kinds of write, each on disk and in the store:

  segment       one segment file                  (write_durably / PUT)
  journal       one journal line                  (append + fsync / PUT of the last
                                                   chunk of up to 100 lines)
  init.mp4, playlist_1h                           (write_durably / PUT)
  add_segment   RecordingDir.add_segment, the whole step before a segment may be listed:
                a recording on disk only against one with the store (disk + S3)
  add_segment_1h  the same on a recording that already lists an hour of segments
                (1,757 records put in its list in memory)

and, apart, the time to encode a journal of 300, 1,757 and 5,273 lines (10 min, 1 h, 3 h),
which add_segment does every segment when there is a store.

moto_server runs as a subprocess pinned to CPU 1; this process (the writer) to CPU 0.
moto keeps objects in memory and sits on loopback: this measures the client path and
the HTTP/S3 protocol cost (signing, one request and answer per PUT, moto's own Python),
not a network, nor a real S3's durability (which replicates across machines before it
answers). Every kind of write is measured --writes times, interleaved: each round does
one of every kind in a rotated order, with --gap seconds between rounds. The CPU of
the writer, of moto and of every other process on the machine over the writes is
recorded (mediabench.CpuWindow), as is the load average.

    .venv/bin/python bench/s3_write.py --writes 300 --out bench/results/s3_write.json

About a minute with the defaults, after waiting (up to --max-wait s) for the 1-minute
load average to drop below --load-threshold. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np

import majlis
from majlis.media.hls.packager import HlsPackager
from majlis.media.hls.playlist import MediaPlaylist, PlaylistSegment, PlaylistTiming
from majlis.media.recording.directory import (
    RecordingConfig,
    RecordingDir,
    SegmentRecord,
    _journal_line,
    write_durably,
)
from majlis.media.recording.mirror import RecordingMirror
from majlis.media.recording.storage import PatientStore, S3Store, StorageSettings
from majlis.media.runtime.node import NodeSettings
from mediabench import CpuWindow, machine, pct, wait_for_quiet

WRITER_CPU = 0
SERVER_CPU = 1
ACCESS_KEY, SECRET_KEY, REGION = "bench-access", "bench-secret", "us-east-1"
SEGMENT_SECONDS = 2.048  # the default layout's segment: the interval between two writes
PART_SECONDS = 0.256
HOUR_SEGMENTS = int(3600 / SEGMENT_SECONDS)  # 1,757


# --- the bytes -----------------------------------------------------------------------------


def make_recording(directory: Path, seconds: float) -> dict[str, bytes]:
    """A real recording, made by the project's packager as fast as it encodes."""
    layout = NodeSettings(directory)
    packager = HlsPackager(
        directory / "rec",
        space_started_at=time.time(),
        part_frames=layout.part_frames,
        parts_per_segment=layout.parts_per_segment,
        bitrate=layout.bitrate,
    )
    rng = np.random.default_rng(12)
    started = time.time()
    for tick in range(int(seconds / 0.02)):
        t = (np.arange(960) + tick * 960) / 48000
        pcm = 0.1 * np.sin(2 * np.pi * 440 * t) + 0.003 * rng.standard_normal(960)
        packager.push((pcm * 32767).astype(np.int16), started + tick * 0.02)
    packager.sync(60)
    packager.close()
    rec = directory / "rec"
    segments = sorted(rec.glob("s*.m4s"), key=lambda p: int(p.stem[1:]))
    return {
        "segment": segments[len(segments) // 2].read_bytes(),  # a full one, not the last
        "init.mp4": (rec / "init.mp4").read_bytes(),
        "playlist": (rec / "index.m3u8").read_bytes(),
        "journal_line": (rec / "segments.jsonl").read_bytes().splitlines(keepends=True)[1],
        "segment_sizes": json.dumps([p.stat().st_size for p in segments]).encode(),
    }


def hour_playlist() -> bytes:
    """The recording's index.m3u8 after an hour (stored when a life closes or it ends)."""
    playlist = MediaPlaylist(PlaylistTiming(2, PART_SECONDS), map_uri="init.mp4")
    start = time.time()
    for msn in range(HOUR_SEGMENTS):
        pdt = start + msn * SEGMENT_SECONDS
        playlist.append_segment(PlaylistSegment(f"s{msn}.m4s", SEGMENT_SECONDS, pdt, False, ()))
    playlist.end()
    return playlist.render_recording().encode()


# --- moto ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    moto = str(Path(sys.executable).with_name("moto_server"))
    cmd = ["taskset", "-c", str(SERVER_CPU), moto, "-H", "127.0.0.1", "-p", str(port)]
    handle = open(log, "wb")  # noqa: SIM115 - the child holds it
    process = subprocess.Popen(cmd, stdout=handle, stderr=handle)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            return process, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"moto_server did not start (see {log})")


# --- the writes ----------------------------------------------------------------------------


class Writes:
    """Every kind of write, each a callable taking the round number."""

    def __init__(self, root: Path, endpoint: str, data: dict[str, bytes]) -> None:
        bucket = f"rec-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ).create_bucket(Bucket=bucket)
        settings = StorageSettings(
            url=f"s3://{bucket}/majlis",
            endpoint=endpoint,
            region=REGION,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
        )
        store = PatientStore(S3Store(settings))  # what a node hands its recordings
        self.mirror = RecordingMirror(store, "bench-space")
        self.local = root / "local"
        self.local.mkdir()
        self.data = data
        self.journal = open(self.local / "segments.jsonl", "ab")  # noqa: SIM115
        self.lines: list[bytes] = []
        # Two recordings for the whole step: one on disk only, one with the store.
        template = root / "template" / "rec"
        self.step_local = self._recording(root / "step-local", template, None)
        self.step_store = self._recording(root / "step-store", template, store)
        # The same after an hour: the recording already lists 1,757 segments (put in its
        # list in memory; their files are not needed for what add_segment does).
        self.hour_local = self._recording(root / "hour-local", template, None)
        self.hour_store = self._recording(root / "hour-store", template, store)
        for recording in (self.hour_local, self.hour_store):
            recording.segments.extend(
                SegmentRecord(msn, 1, msn * 98304, time.time(), (12,) * 8)
                for msn in range(HOUR_SEGMENTS)
            )
        self.step_msn = {"local": 0, "store": 0, "hour_local": HOUR_SEGMENTS}
        self.step_msn["hour_store"] = HOUR_SEGMENTS

    @staticmethod
    def _recording(where: Path, template: Path, store: PatientStore | None) -> RecordingDir:
        state = json.loads((template / "state.json").read_bytes())
        return RecordingDir.open(where / "space", RecordingConfig(**state["config"]), store)

    def kinds(self) -> dict[str, Callable[[int], None]]:
        d = self.data

        def journal_local(n: int) -> None:
            self.journal.write(d["journal_line"])
            self.journal.flush()
            os.fsync(self.journal.fileno())

        def journal_store(n: int) -> None:
            self.lines.append(d["journal_line"])
            self.mirror.store_journal(self.lines, len(self.lines) - 1)

        def step(which: str, recording: RecordingDir) -> Callable[[int], None]:
            def run(n: int) -> None:
                msn = self.step_msn[which]
                self.step_msn[which] += 1
                record = SegmentRecord(msn, 1, msn * 98304, time.time(), (12,) * 8)
                recording.add_segment(record, d["segment"])

            return run

        return {
            "segment/disk": lambda n: write_durably(self.local / f"s{n}.m4s", d["segment"]),
            "segment/s3": lambda n: self.mirror.put(f"s{n}.m4s", d["segment"]),
            "journal/disk": journal_local,
            "journal/s3": journal_store,
            "init.mp4/disk": lambda n: write_durably(self.local / "init.mp4", d["init.mp4"]),
            "init.mp4/s3": lambda n: self.mirror.put("init.mp4", d["init.mp4"]),
            "playlist_1h/disk": lambda n: write_durably(
                self.local / "index.m3u8", d["playlist_1h"]
            ),
            "playlist_1h/s3": lambda n: self.mirror.put("index.m3u8", d["playlist_1h"]),
            "add_segment/disk": step("local", self.step_local),
            "add_segment/disk+s3": step("store", self.step_store),
            "add_segment_1h/disk": step("hour_local", self.hour_local),
            "add_segment_1h/disk+s3": step("hour_store", self.hour_store),
        }

    def close(self) -> None:
        self.journal.close()
        for recording in (self.step_local, self.step_store, self.hour_local, self.hour_store):
            recording.close()


def journal_encoding_ms(counts: tuple[int, ...] = (300, 1757, 5273)) -> dict[str, float]:
    """What add_segment spends, with a store, re-encoding the whole journal each segment
    (RecordingDir._journal_lines: one line per listed segment) at 10 min, 1 h and 3 h."""
    out = {}
    for count in counts:
        records = [
            SegmentRecord(m, 1, m * 98304, 1.7e9 + m * 2.048, (12,) * 8) for m in range(count)
        ]
        begun = time.perf_counter()
        for _ in range(5):
            [_journal_line(record) for record in records]
        out[str(count)] = round((time.perf_counter() - begun) / 5 * 1000, 2)
    return out


def summary(samples: list[float]) -> dict[str, float | None]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "n": len(samples),
        "p50_ms": ms(pct(samples, 50)),
        "p95_ms": ms(pct(samples, 95)),
        "p99_ms": ms(pct(samples, 99)),
        "max_ms": ms(max(samples)),
        "mean_ms": ms(sum(samples) / len(samples)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    quiet = wait_for_quiet(args.load_threshold, args.max_wait)
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    os.sched_setaffinity(0, {WRITER_CPU})
    root = Path(tempfile.mkdtemp(prefix="majlis-s3write-", dir=args.dir))
    moto, endpoint = start_moto(root / "moto.log")
    started = time.monotonic()
    try:
        data = make_recording(root / "template", args.record_seconds)
        data["playlist_1h"] = hour_playlist()
        writes = Writes(root, endpoint, data)
        kinds = writes.kinds()
        names = list(kinds)
        times: dict[str, list[float]] = {name: [] for name in names}
        cpu = CpuWindow({"writer": os.getpid(), "moto": moto.pid})
        for n in range(args.warmup + args.writes):
            shift = n % len(names)
            for name in names[shift:] + names[:shift]:
                begun = time.perf_counter()
                kinds[name](n)
                took = time.perf_counter() - begun
                if n >= args.warmup:
                    times[name].append(took)
            time.sleep(args.gap)
        machine_cpu = cpu.finish()
        writes.close()
        encoding = journal_encoding_ms()
    finally:
        moto.terminate()
        moto.wait(10)
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
    results = {name: summary(samples) for name, samples in times.items()}
    ratios = {}
    for name in names:
        what, where = name.split("/")
        if where != "disk":
            base = results[f"{what}/disk"]
            ratios[name] = {
                q: round(results[name][q] / base[q], 1) if base[q] else None
                for q in ("p50_ms", "p95_ms", "max_ms")
            }
    return {
        "command": " ".join(["bench/s3_write.py", *sys.argv[1:]]),
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "majlis_source": str(Path(majlis.__file__).parent),
        "waited_for_quiet": quiet,
        "uptime_before": uptime_before,
        "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "run_seconds": round(time.monotonic() - started, 1),
        "store": "moto_server (in memory) on 127.0.0.1, pinned to CPU 1; writer on CPU 0",
        "local_dir_filesystem": _filesystem(args.dir),
        "sizes_bytes": {
            "segment": len(data["segment"]),
            "segments_of_the_recording": json.loads(data["segment_sizes"]),
            "init.mp4": len(data["init.mp4"]),
            "playlist_1h": len(data["playlist_1h"]),
            "journal_line": len(data["journal_line"]),
            "journal_chunk_at_end": len(
                b"".join(writes.lines[(len(writes.lines) - 1) // 100 * 100 :])
            ),
        },
        "writes": args.writes,
        "warmup": args.warmup,
        "gap_s": args.gap,
        "segment_interval_s": SEGMENT_SECONDS,
        "part_interval_s": PART_SECONDS,
        "cpu_during_writes": machine_cpu,
        "journal_encoding_ms_by_segments_listed": encoding,
        "results": results,
        "ratio_to_disk": ratios,
    }


def _filesystem(directory: str | None) -> str:
    where = directory or tempfile.gettempdir()
    out = subprocess.run(
        ["df", "--output=source,fstype", where], capture_output=True, text=True
    ).stdout
    return " ".join(out.split()[2:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=300, help="measured writes per kind")
    parser.add_argument("--warmup", type=int, default=10, help="rounds not counted")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between rounds")
    parser.add_argument("--record-seconds", type=float, default=20.0)
    parser.add_argument("--dir", help="where the local files go (default: the temp dir)")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=120.0, help="for a quiet machine")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
