"""How many LL-HLS listeners the node's own origin serves without stalls, and what serving
them does to the mixer's tick lateness (no edge in front: every request is Python work).

One `majlis serve` pinned to CPU 0. Per phase: a new live space with one speaker
(`majlis speak --tone`, pinned to CPU 1) and N simulated listeners in this process (pinned
to CPU 1, uvloop, a minimal keep-alive HTTP/1.1 client on asyncio streams). Each listener
behaves like an LL-HLS player: two connections (as a browser would open), one doing
blocking playlist reloads (`_HLS_msn`/`_HLS_part` of the preload hint) and one fetching
every part in order, the hinted one as soon as it is hinted (the origin holds it until it
is written). Listeners start spread over `--ramp` seconds, then warm up, then the window.

A stall: a player that started playing `--margin` seconds (default: one part duration)
after its first part arrived, and plays parts back to back, needs part i at
start + margin + i * part; a part arriving later stalls it (and playback resumes when the
part is there). A listener with no part at all in the window counts as stalled too.
Also reported: each part's delay behind the first listener that got it (how much the
origin makes the crowd wait), requests/s served, server and client CPU, and the mixer's
tick lateness from /metrics for the phase's space (its whole life: speaker connecting,
ramp and window).

    .venv/bin/python bench/listeners.py --runs 3 --counts 100,250,500 --seconds 10

Prints JSON: per phase, and medians per N over runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop

from mediabench import (
    CLEAN_OTHERS_PCT,
    MAJLIS,
    Api,
    CpuWindow,
    Server,
    is_clean,
    machine,
    median,
    ms,
    pct,
    pin_self_to_client_cpu,
    running_server,
    wait_for_quiet,
)

_PART_URIS = re.compile(rb'#EXT-X-PART:[^\n]*?URI="([^"]+)"')
_HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:[^\n]*?URI="([^"]+)"')
_PART_TARGET = re.compile(rb"PART-TARGET=([\d.]+)")
_NAME = re.compile(rb"p(\d+)-(\d+)-(\d+)\.m4s")


class HttpConn:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._request_head = b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, target: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self._reader is None or self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            reader, writer = self._reader, self._writer
            try:
                writer.write(b"GET " + target + self._request_head)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length, close = 0, False
                for line in head.split(b"\r\n")[1:]:
                    lower = line.lower()
                    if lower.startswith(b"content-length:"):
                        length = int(line[15:])
                    elif lower.startswith(b"connection:") and b"close" in lower:
                        close = True
                    elif lower.startswith(b"transfer-encoding:"):
                        raise RuntimeError("chunked answers are not expected from the origin")
                body = await reader.readexactly(length) if length else b""
                if close:
                    self.close()
                return status, body
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Counters:
    requests: int = 0
    bytes: int = 0
    non_200: int = 0
    exceptions: int = 0


def _key(name: bytes) -> tuple[int, int, int]:
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(name)
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _seq(name: bytes, per_segment: int) -> int:
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(name)
    return int(match.group(2)) * per_segment + int(match.group(3))


@dataclass
class SimListener:
    host: str
    port: int
    base: bytes  # b"/hls/SPACE/TOKEN/": the playback token is in the path
    counters: Counters
    arrivals: list[tuple[bytes, float]] = field(default_factory=list)
    parts: list[bytes] = field(default_factory=list)
    hint: bytes | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _get(self, conn: HttpConn, target: bytes) -> tuple[int, bytes]:
        try:
            status, body = await conn.get(target)
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            self.counters.exceptions += 1
            await asyncio.sleep(0.1)
            return 0, b""
        self.counters.requests += 1
        self.counters.bytes += len(body)
        if status != 200:
            self.counters.non_200 += 1
        return status, body

    async def _playlist(self, conn: HttpConn, hint: bytes | None) -> None:
        target = self.base + b"index.m3u8"
        if hint is not None:
            match = _NAME.fullmatch(hint)
            if match:
                target += b"?_HLS_msn=" + match.group(2) + b"&_HLS_part=" + match.group(3)
        status, body = await self._get(conn, target)
        if status != 200:
            await asyncio.sleep(0.05)
            return
        start = body.find(b"#EXT-X-PART:")
        self.parts = _PART_URIS.findall(body, max(start, 0))
        found = _HINT.search(body, max(start, 0))
        self.hint = found.group(1) if found else None
        self._changed.set()
        self._changed = asyncio.Event()

    async def run(self) -> None:
        playlists = HttpConn(self.host, self.port)
        media = HttpConn(self.host, self.port)
        reloader: asyncio.Task[None] | None = None
        try:
            while self.hint is None:
                await self._playlist(playlists, None)
            reloader = asyncio.create_task(self._reload(playlists))
            name: bytes | None = self.hint
            while name is not None:
                status, _ = await self._get(media, self.base + name)
                if status != 200:
                    await self._changed.wait()
                    continue
                self.arrivals.append((name, time.time()))
                name = await self._successor(name)
        finally:
            if reloader is not None:
                reloader.cancel()
            playlists.close()
            media.close()

    async def _reload(self, conn: HttpConn) -> None:
        while True:
            await self._playlist(conn, self.hint)

    async def _successor(self, name: bytes) -> bytes | None:
        while True:
            parts = self.parts
            if name in parts:
                index = parts.index(name)
                if index + 1 < len(parts):
                    return parts[index + 1]
                if self.hint is not None and self.hint != name:
                    return self.hint
            elif parts and _key(name) < _key(parts[0]):
                return parts[0]  # fell out of the part window: skip ahead (a stall)
            await self._changed.wait()


def stalls(
    arrivals: list[tuple[int, float]], part: float, margin: float, start: float, end: float
) -> tuple[int, float]:
    """(stall count, stalled seconds) of a player fed `arrivals` (seq, time) in the window."""
    inside = sorted((seq, at) for seq, at in arrivals if start <= at <= end)
    if not inside:
        return 1, end - start
    first_seq, first_at = inside[0]
    play_start = first_at + margin
    count, stalled = 0, 0.0
    for seq, at in inside[1:]:
        needed = play_start + (seq - first_seq) * part
        if at > needed:
            count += 1
            stalled += at - needed
            play_start += at - needed
    last_seq = inside[-1][0]
    needed = play_start + (last_seq + 1 - first_seq) * part
    if end > needed + part:  # the next part is overdue at the end of the window
        count += 1
        stalled += end - needed
    return count, stalled


async def phase(
    server: Server, api: Api, count: int, args: argparse.Namespace, tokens: int
) -> dict[str, Any]:
    space = api.create_space("host", f"listeners {count}")
    sid = space["id"]
    speaker = await asyncio.create_subprocess_exec(
        *[
            "taskset",
            "-c",
            "1",
            MAJLIS,
            "speak",
            sid,
            "--server",
            server.url,
            "--user",
            "host",
            "--tone",
            "440",
            "--level",
            "-20",
        ],
        env=server.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    listeners: list[SimListener] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        assert speaker.stdout is not None
        line = (await asyncio.wait_for(speaker.stdout.readline(), 30)).decode()
        if "connected" not in line:
            raise RuntimeError(f"the speaker did not connect: {line!r}")
        await asyncio.sleep(2.0)
        grants = [api.playback(sid) for _ in range(min(count, tokens))]
        url = urlsplit(grants[0][0])
        host, port = url.hostname or "127.0.0.1", url.port or 80
        bases = [urlsplit(grant[0]).path.rsplit("/", 1)[0].encode() + b"/" for grant in grants]
        probe = HttpConn(host, port)
        _, playlist = await probe.get(bases[0] + b"index.m3u8")
        probe.close()
        found = _PART_TARGET.search(playlist)
        part = float(found.group(1)) if found else 0.256
        counters = Counters()
        for index in range(count):
            listener = SimListener(host, port, bases[index % len(bases)], counters)
            listeners.append(listener)
            tasks.append(asyncio.create_task(listener.run()))
            await asyncio.sleep(args.ramp / count)
        await asyncio.sleep(args.warmup)
        before = (counters.requests, counters.bytes, counters.non_200, counters.exceptions)
        window = CpuWindow({**server.pids(), "client": os.getpid(), "speaker": speaker.pid})
        start = time.time()
        await asyncio.sleep(args.seconds)
        end = time.time()
        cpu = window.finish()
        after = (counters.requests, counters.bytes, counters.non_200, counters.exceptions)
        metrics = server.space_metrics(sid)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        speaker.terminate()
        await speaker.wait()
        api.end_space("host", sid)
    per_segment = 1 + max(
        (
            int(m.group(3))
            for lst in listeners
            for n, _ in lst.arrivals
            if (m := _NAME.fullmatch(n))
        ),
        default=0,
    )
    earliest: dict[bytes, float] = {}
    for listener in listeners:
        for name, at in listener.arrivals:
            if at < earliest.get(name, float("inf")):
                earliest[name] = at
    behind: list[float] = []
    stalled_listeners, stall_events, stall_seconds = 0, 0, 0.0
    for listener in listeners:
        seqs = [(_seq(name, per_segment), at) for name, at in listener.arrivals]
        n, seconds = stalls(seqs, part, args.margin or part, start, end)
        stalled_listeners += n > 0
        stall_events += n
        stall_seconds += seconds
        behind += [at - earliest[name] for name, at in listener.arrivals if start <= at <= end]
    elapsed = end - start
    return {
        "listeners": count,
        "part_s": part,
        "stalled_listeners": stalled_listeners,
        "stall_events": stall_events,
        "stalled_seconds_total": round(stall_seconds, 2),
        "requests_per_s": round((after[0] - before[0]) / elapsed, 1),
        "expected_requests_per_s": round(2 * count / part, 1),
        "mbit_per_s": round((after[1] - before[1]) * 8 / elapsed / 1e6, 2),
        "non_200": after[2] - before[2],
        "client_exceptions": after[3] - before[3],
        "behind_first_listener_ms": {
            "p50": ms(pct(behind, 50)),
            "p99": ms(pct(behind, 99)),
            "max": ms(max(behind)) if behind else None,
        },
        "cpu": cpu,
        "tick_late_p50_ms": metrics.get("majlis_mixer_tick_late_p50_ms"),
        "tick_late_p99_ms": metrics.get("majlis_mixer_tick_late_p99_ms"),
        "tick_late_max_ms": metrics.get("majlis_mixer_tick_late_max_ms"),
        "ticks_skipped": metrics.get("majlis_mixer_ticks_skipped_total"),
        "packager_backlog_frames": metrics.get("majlis_packager_backlog_frames"),
        "client_saturated": cpu["client_cpu_pct"] + cpu["speaker_cpu_pct"] > 90.0,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counts: list[int] = args.counts
    phases: list[dict[str, Any]] = []
    with running_server() as server:
        api = Api(server)
        api.register("host")
        for run in range(args.runs):
            order = counts[run % len(counts) :] + counts[: run % len(counts)]
            for count in order:
                quiet = wait_for_quiet(args.load_threshold, args.max_wait)
                result = await phase(server, api, count, args, args.tokens)
                result |= {"run": run, "load_before": quiet, "clean": is_clean(result["cpu"])}
                phases.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
        api.close()

    def summarize(mine: list[dict[str, Any]]) -> dict[str, Any]:
        def med(get: Any) -> float | None:
            return median([get(p) for p in mine])

        return {
            "phases": len(mine),
            "stalled_listeners_median": med(lambda p: p["stalled_listeners"]),
            "stalled_listeners_each": [p["stalled_listeners"] for p in mine],
            "requests_per_s_median": med(lambda p: p["requests_per_s"]),
            "server_cpu_pct_median": med(lambda p: p["cpu"]["server_cpu_pct"]),
            # 0 in thread mode: the media node's CPU is then in server_cpu_pct.
            "worker_cpu_pct_median": med(lambda p: p["cpu"].get("worker_cpu_pct", 0.0)),
            "client_cpu_pct_median": med(lambda p: p["cpu"]["client_cpu_pct"]),
            "tick_late_p99_ms_median": med(lambda p: p["tick_late_p99_ms"]),
            "tick_late_p99_ms_each": [p["tick_late_p99_ms"] for p in mine],
            "tick_late_max_ms_median": med(lambda p: p["tick_late_max_ms"]),
            "behind_first_p99_ms_median": med(lambda p: p["behind_first_listener_ms"]["p99"]),
            "others_cpu_pct_median": med(lambda p: p["cpu"]["others_cpu_pct"]),
            "load_1m_median": med(lambda p: p["cpu"]["load_1m_start"]),
        }

    table = []
    for count in counts:
        mine = [p for p in phases if p["listeners"] == count]
        table.append(
            {
                "listeners": count,
                "clean": summarize([p for p in mine if p["clean"]]),
                "all": summarize(mine),
            }
        )
    return {
        "benchmark": "listeners",
        "machine": machine(),
        "args": vars(args),
        "goal": "tick lateness p99 <= 10 ms while serving 500 listeners",
        "clean_means": f"other processes used <= {CLEAN_OTHERS_PCT}% of a core in the window",
        "table": table,
        "phases": phases,
        "speaker": "majlis speak --tone 440 --level -20 (one)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--counts",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[100, 250, 500],
        help="listener counts, comma separated (at most 2000)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--ramp", type=float, default=2.0, help="s over which listeners start")
    parser.add_argument("--warmup", type=float, default=3.0, help="s after the ramp")
    parser.add_argument("--margin", type=float, default=0.0, help="player buffer (0: 1 part)")
    parser.add_argument("--tokens", type=int, default=50, help="distinct playback tokens")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=60.0, help="s to wait for quiet")
    args = parser.parse_args()
    if args.runs < 1 or any(not 1 <= c <= 2000 for c in args.counts) or args.seconds > 300:
        raise SystemExit("--runs ≥ 1, counts within 1..2000, --seconds ≤ 300")
    pin_self_to_client_cpu()
    print(json.dumps(uvloop.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
