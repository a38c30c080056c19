"""A long run at a steady share of the server's core (issue 13, R6): does memory grow, do
file descriptors leak?

`majlis serve` (embedded: SQLite, media worker) is pinned to CPU 0; everything else (wrk,
the speakers, this script) to CPU 1. For `--minutes`:

- one space is live all along, its host speaking a tone (`majlis speak`);
- every minute another space is created, spoken in for 40 s and ended (a space's whole
  life: media start and stop, a recording finished, a replay written);
- `wrk` sends the listeners' traffic in one-minute chunks: `--listeners` anonymous
  members each join, send a heartbeat, read the space and the space list, and fetch the
  live playlist four times. Before each chunk they join again for fresh playback tokens.
  The pace (wrk's per-request delay) is set after every chunk so that the server's two
  processes use `--load` of CPU 0.

Every 10 s: resident memory, open file descriptors and threads of the server and of its
media worker. The summary compares the first sample after `--warmup` minutes with the
median of the last five, and fits a slope over everything after the warm-up.

`--env KEY=VALUE` sets an environment variable for the server and its media worker (the
allocator's, say: PYTHONMALLOC=malloc, MALLOC_ARENA_MAX=2), so that two soaks side by side
can compare them.

With `--heap DIR` the media worker traces its allocations (_MAJLIS_HEAP_SNAPSHOTS,
media/runtime/heap.py) and is asked for a snapshot at the end of the warm-up and at the
end; the result lists the source lines whose live memory grew most between the two.

    flock /tmp/majlis-bench.lock .venv/bin/python bench/soak.py --minutes 60 \
        --out bench/results/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from majlis.media.runtime.heap import HEAP_SNAPSHOTS_ENV
from mediabench import CLIENT_CPU, MAJLIS, PASSWORD, Api, Server, machine, running_server
from storm import LUA_COMMON, start_wrk, wrk_result

V1 = "/api/v1"
CHUNK_S = 60
CONNECTIONS = 16
SAMPLE_S = 10.0
CHURN_SPEAK_S = 40
HEAP_TOP = 30  # source lines listed in the heap comparison

LUA_MIX = """
local specs = {%(specs)s}
local reqs = {}
local i = 0
local pace = %(pace)d
function init(args)
  for _, s in ipairs(specs) do
    local headers = {}
    if s[3] ~= "" then headers["Authorization"] = "Bearer " .. s[3] end
    local body = nil
    if s[4] ~= "" then
      headers["Content-Type"] = "application/json"
      body = s[4]
    end
    table.insert(reqs, wrk.format(s[1], s[2], headers, body))
  end
end
function request()
  i = i + 1
  return reqs[(i %% #reqs) + 1]
end
function delay()
  return math.random(0, 2 * pace)
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for this text


def mix_script(
    directory: Path, space_id: str, members: list[tuple[str, str]], pace_ms: int
) -> Path:
    """members: (anonymous token, playback URL path)."""
    specs = []
    for token, playlist in members:
        beat = json.dumps({"playback_token": playlist.split("/")[3]})
        rows = [
            ("POST", f"{V1}/spaces/{space_id}/join", token, "{}"),
            ("POST", f"{V1}/spaces/{space_id}/heartbeat", token, beat),
            ("GET", f"{V1}/spaces/{space_id}", token, ""),
            ("GET", f"{V1}/spaces", "", ""),
            *[("GET", playlist, "", "")] * 4,
        ]
        specs += ["{" + ",".join(_lua_string(x) for x in row) + "}" for row in rows]
    path = directory / "mix.lua"
    path.write_text(LUA_COMMON + LUA_MIX % {"specs": ",\n".join(specs), "pace": pace_ms})
    return path


def join_all(http: httpx.Client, space_id: str, tokens: list[str]) -> list[tuple[str, str]]:
    out = []
    for token in tokens:
        answer = http.post(
            f"{V1}/spaces/{space_id}/join", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        path = httpx.URL(answer.json()["playback_url"]).path
        out.append((token, path))
    return out


def proc_facts(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def jiffies(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(parts[11]) + int(parts[12])
    return total


def speaker(
    server: Server, space_id: str, user: str, seconds: float | None
) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", str(CLIENT_CPU), MAJLIS, "speak", space_id]
    command += ["--server", server.url, "--user", user, "--tone", "440"]
    if seconds is not None:
        command += ["--duration", str(seconds)]
    env = {**server.env, "MAJLIS_PASSWORD": PASSWORD}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Sampler:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            sample: dict[str, Any] = {"t_s": round(time.monotonic() - self.started, 1)}
            try:
                for name, pid in self.pids.items():
                    sample[name] = proc_facts(pid)
            except FileNotFoundError:  # a process was replaced: a crash, which the summary shows
                self.samples.append({**sample, "gone": True})
            else:
                self.samples.append(sample)
            if self._stop.wait(SAMPLE_S):
                return


def summarize(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    after = [s for s in samples if s["t_s"] >= warmup_s and "gone" not in s]
    out: dict[str, Any] = {}
    for name in ("server", "worker"):
        for fact in ("rss_kb", "fds", "threads"):
            series = [s[name][fact] for s in after]
            first, last = series[0], statistics.median(series[-5:])
            hours = np.array([s["t_s"] for s in after]) / 3600
            slope = float(np.polyfit(hours, np.array(series, dtype=float), 1)[0])
            out[f"{name}_{fact}"] = {
                "at_warmup": first,
                "end": last,
                "min": min(series),
                "max": max(series),
                "growth_pct": round(100 * (last - first) / first, 2),
                "slope_per_hour": round(slope, 1),
            }
    return out


def ask_for_heap(worker: int, directory: Path) -> Path:
    """SIGUSR2 to the worker, then wait for the snapshot it writes."""
    before = set(directory.glob("*.heap"))
    os.kill(worker, signal.SIGUSR2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = set(directory.glob("*.heap")) - before
        if new:
            path = new.pop()
            size = -1
            while size != path.stat().st_size:  # written in one go, but not atomically
                size = path.stat().st_size
                time.sleep(1)
            return path
        time.sleep(0.5)
    raise SystemExit(f"the media worker wrote no heap snapshot to {directory}")


def heap_growth(first: Path, last: Path) -> list[dict[str, Any]]:
    """The source lines whose live allocations grew most from `first` to `last`."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old = tracemalloc.Snapshot.load(str(first)).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(str(last)).filter_traces(ignore)
    out = []
    for stat in new.compare_to(old, "traceback")[:HEAP_TOP]:
        out.append(
            {
                "kb_diff": round(stat.size_diff / 1024, 1),
                "kb": round(stat.size / 1024, 1),
                "count_diff": stat.count_diff,
                "traceback": [f"{f.filename}:{f.lineno}" for f in stat.traceback],
            }
        )
    return out


def churn_space(api: Api, title: str) -> str | None:
    """A new space, or None when the server refuses it because its media is full or
    behind (503 media_full: a busy machine makes its mixers late); that minute then has
    no churning space, and the result counts it."""
    headers = {"Authorization": f"Bearer {api.tokens['churn']}"}
    answer = api.http.post(f"{V1}/spaces", json={"title": title}, headers=headers)
    if answer.status_code == 503 and answer.json().get("error") == "media_full":
        print(f"{title}: refused, {answer.json()['reason']}", file=sys.stderr, flush=True)
        return None
    answer.raise_for_status()
    space_id: str = answer.json()["id"]
    return space_id


def end_churn(api: Api, space_id: str) -> float:
    """Seconds the server took to end a churning space (-1: no answer in 30 s, which is
    recorded rather than ending the soak; that space stays live)."""
    started = time.monotonic()
    try:
        api.end_space("churn", space_id)
    except httpx.TimeoutException:
        print(json.dumps({"end_timed_out": space_id}), flush=True)
        return -1.0
    return round(time.monotonic() - started, 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="majlis-soak-"))
    extra_env = dict(args.env)
    if args.heap is not None:
        extra_env[HEAP_SNAPSHOTS_ENV] = str(args.heap)
    heaps: list[Path] = []
    with running_server(extra_env) as server:
        api = Api(server)
        api.register("host")
        api.register("churn")
        space = api.create_space("host", "soak")["id"]
        main_speaker = speaker(server, space, "host", None)
        tokens = [
            api.http.post(f"{V1}/auth/anonymous").json()["token"] for _ in range(args.listeners)
        ]
        pids = server.pids()
        chunks: list[dict[str, Any]] = []
        pace = args.pace
        ends = time.monotonic() + args.minutes * 60
        try:
            with Sampler(pids) as sampler:
                while time.monotonic() + CHUNK_S <= ends + 1:
                    churn = churn_space(api, f"churn {len(chunks)}")
                    churn_speaker = (
                        None if churn is None else speaker(server, churn, "churn", CHURN_SPEAK_S)
                    )
                    members = join_all(api.http, space, tokens)
                    script = mix_script(work, space, members, pace)
                    cpu_before, t0 = jiffies(list(pids.values())), time.monotonic()
                    result = wrk_result(start_wrk(server.url, script, CHUNK_S, CONNECTIONS))
                    ticks = os.sysconf("SC_CLK_TCK")
                    cpu = (jiffies(list(pids.values())) - cpu_before) / ticks
                    cpu_pct = 100 * cpu / (time.monotonic() - t0)
                    ended_s = None
                    if churn_speaker is not None and churn is not None:
                        churn_speaker.wait(30)
                        ended_s = end_churn(api, churn)
                    result.update(pace_ms=pace, server_cpu_pct=round(cpu_pct, 1))
                    result["churn_refused"] = churn is None
                    result["churn_end_s"] = ended_s
                    chunks.append(result)
                    print(json.dumps({"chunk": len(chunks), **result}), flush=True)
                    # Steer towards the target share: the request part of the CPU scales
                    # with 1/pace; at most a factor of two a step, so that noise does not
                    # swing it.
                    wanted = pace * min(2.0, max(0.5, cpu_pct / (100 * args.load)))
                    pace = max(1, min(1000, round(wanted)))
                    warm = time.monotonic() - sampler.started >= args.warmup * 60
                    if args.heap is not None and warm and not heaps:
                        heaps.append(ask_for_heap(pids["worker"], args.heap))
                if args.heap is not None:
                    heaps.append(ask_for_heap(pids["worker"], args.heap))
        finally:
            main_speaker.terminate()
            main_speaker.wait(10)
        samples = sampler.samples
    return {
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": summarize(samples, args.warmup * 60),
        "cpu_pct_median": statistics.median(c["server_cpu_pct"] for c in chunks),
        "requests": sum(c["requests"] for c in chunks),
        "non_2xx": sum(c["s401"] + c["s429"] + c["s503"] + c["sother"] for c in chunks),
        "socket_errors": sum(c["socket_errors"] for c in chunks),
        "churn_refused": sum(1 for c in chunks if c["churn_refused"]),
        "churn_end_timeouts": sum(1 for c in chunks if c["churn_end_s"] == -1.0),
        "heap_growth": heap_growth(heaps[0], heaps[-1]) if len(heaps) > 1 else [],
        "chunks": chunks,
        "samples": samples,
    }


def env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10, help="minutes before comparing")
    parser.add_argument("--load", type=float, default=0.7, help="share of CPU 0 to aim for")
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--pace", type=int, default=40, help="first per-request delay, ms")
    parser.add_argument("--heap", type=Path, help="trace the media worker's heap, snapshots here")
    parser.add_argument(
        "--env",
        type=env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set for the server and its media worker (e.g. PYTHONMALLOC=malloc); repeatable",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(
        json.dumps(
            {"summary": result["summary"], "cpu_pct_median": result["cpu_pct_median"]}, indent=1
        )
    )


if __name__ == "__main__":
    main()
