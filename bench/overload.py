"""Goodput under overload (issue 13, R2): offered 2x and 5x what the server can do, how
much useful work still gets done, and how fast the refused are told.

`majlis serve` (embedded, media off, per-IP limits out of the way: every client is
127.0.0.1; overload shedding as shipped) is pinned to CPU 0, wrk and this script to CPU 1.
The work is the commonest write at scale: listeners' heartbeats (`POST .../heartbeat`),
from 2,000 anonymous members who joined before each phase.

- peak: 32 connections as fast as they go; its 2xx per second is the server's capacity.
- 1x, 2x, 5x: wrk connections each wait a random 0-2x`PACE_MS` before every request,
  as many connections as give that multiple of the peak rate. A connection waits for
  its answer before its next delay, so what is really offered is also reported.
- A probe (this script, 20 heartbeats a second on connections of its own) records each
  answer's status and time, so that refusals and successes get percentiles of their own.

    flock /tmp/majlis-bench.lock .venv/bin/python bench/overload.py --runs 3 --seconds 10 \
        --out bench/results/overload.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from mediabench import CLIENT_CPU, Server, machine, running_server, wait_for_quiet
from storm import LUA_COMMON, anonymous_tokens, sampling_metrics, start_wrk, uptime, wrk_result

V1 = "/api/v1"
MEMBERS = 2000
PACE_MS = 50
PEAK_CONNECTIONS = 32
PROBE_EVERY_S = 0.05

LUA_BEATS = """
local beats = {%(beats)s}
local i = 0
local pace = %(pace)d
request = function()
  i = i + 1
  local beat = beats[(i %% #beats) + 1]
  return wrk.format("POST", "%(path)s", {["Authorization"] = "Bearer " .. beat[1],
    ["Content-Type"] = "application/json"}, beat[2])
end
%(delay)s
"""

DELAY = """
function delay()
  return math.random(0, 2 * pace)
end
"""


def beats_script(
    d: Path, name: str, path: str, members: list[tuple[str, str]], paced: bool
) -> Path:
    rows = [
        "{" + json.dumps(token) + "," + json.dumps(json.dumps({"playback_token": playback})) + "}"
        for token, playback in members
    ]
    text = LUA_BEATS % {
        "beats": ",\n".join(rows),
        "pace": PACE_MS,
        "path": path,
        "delay": DELAY if paced else "",
    }
    script = d / f"{name}.lua"
    script.write_text(LUA_COMMON + text)
    return script


def join_members(http: httpx.Client, space_id: str, tokens: list[str]) -> list[tuple[str, str]]:
    """(token, playback token) for each; joined again before every phase, since playback
    tokens last two minutes."""
    out = []
    for token in tokens:
        answer = http.post(
            f"{V1}/spaces/{space_id}/join", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        out.append((token, answer.json()["playback_token"]))
    return out


class Probe:
    """Heartbeats at a steady pace on its own connections; every answer's status and time."""

    def __init__(self, url: str, path: str, members: list[tuple[str, str]]) -> None:
        self.url, self.path, self.members = url, path, members
        self.answers: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while not self._stop.wait(PROBE_EVERY_S):
                token, playback = self.members[i % len(self.members)]
                i += 1
                started = time.perf_counter()
                try:
                    answer = http.post(
                        self.path,
                        json={"playback_token": playback},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((status, time.perf_counter() - started))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sent": len(self.answers)}
        groups = {"ok": (200, 200), "refused": (429, 503)}
        for name, statuses in groups.items():
            times = [t for s, t in self.answers if s in statuses]
            out[f"{name}_n"] = len(times)
            if times:
                array = np.asarray(times) * 1000
                out[f"{name}_p50_ms"] = round(float(np.percentile(array, 50)), 2)
                out[f"{name}_p99_ms"] = round(float(np.percentile(array, 99)), 2)
                out[f"{name}_max_ms"] = round(float(array.max()), 2)
        out["failed"] = sum(1 for s, _ in self.answers if s == 0)
        return out


def phase(
    server: Server,
    http: httpx.Client,
    space_id: str,
    tokens: list[str],
    seconds: int,
    connections: int,
    paced: bool,
) -> dict[str, Any]:
    path = f"{V1}/spaces/{space_id}/heartbeat"
    members = join_members(http, space_id, tokens)
    script = beats_script(server.data_dir, "beats", path, members[100:], paced)
    with sampling_metrics(server) as seen, Probe(server.url, path, members[:100]) as probe:
        result = wrk_result(start_wrk(server.url, script, seconds, connections))
    result["connections"] = connections
    result["goodput_per_s"] = round(result["s2xx"] / result["seconds"], 1)
    result["probe"] = probe.summary()
    result["loop_lag_ms_max"] = round(max(seen["loop_lag_ms"], default=0.0), 1)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = {"MAJLIS_MEDIA": "false"}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ("peak", "1x", "2x", "5x")}
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(
            f"{V1}/auth/register", json={"username": "host", "password": "bench-password-1"}
        )
        headers = {"Authorization": f"Bearer {answer.json()['token']}"}
        space_id = http.post(f"{V1}/spaces", json={"title": "overload"}, headers=headers).json()[
            "id"
        ]
        tokens = anonymous_tokens(http, MEMBERS)
        for _ in range(args.runs):
            time.sleep(2.0)
            peak = phase(server, http, space_id, tokens, args.seconds, PEAK_CONNECTIONS, False)
            runs["peak"].append(peak)
            print("peak", json.dumps(peak), file=sys.stderr)
            for multiple in (1, 2, 5):
                time.sleep(2.0)
                # Each connection offers about 1000 / PACE_MS requests a second.
                wanted = multiple * peak["goodput_per_s"]
                connections = max(1, round(wanted * PACE_MS / 1000))
                result = phase(server, http, space_id, tokens, args.seconds, connections, True)
                result["offered_multiple"] = multiple
                result["goodput_of_peak"] = round(
                    result["goodput_per_s"] / peak["goodput_per_s"], 3
                )
                runs[f"{multiple}x"].append(result)
                print(f"{multiple}x", json.dumps(result), file=sys.stderr)
    return runs


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def med(values: list[Any]) -> Any:
        kept = [v for v in values if v is not None]
        return round(statistics.median(kept), 3) if kept else None

    out = {}
    for name, results in runs.items():
        out[name] = {
            "answered_per_s": med([r["per_s"] for r in results]),
            "goodput_per_s": med([r["goodput_per_s"] for r in results]),
            "goodput_of_peak": med([r.get("goodput_of_peak") for r in results]),
            "s503_share": med([r["s503"] / max(1, r["requests"]) for r in results]),
            "all_p99_ms": med([r["p99_ms"] for r in results]),
            "probe_ok_p99_ms": med([r["probe"].get("ok_p99_ms") for r in results]),
            "probe_refused_n": med([r["probe"]["refused_n"] for r in results]),
            "probe_refused_p50_ms": med([r["probe"].get("refused_p50_ms") for r in results]),
            "probe_refused_p99_ms": med([r["probe"].get("refused_p99_ms") for r in results]),
            "connections": med([r["connections"] for r in results]),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=float, default=300.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    before = uptime()
    quiet = wait_for_quiet(args.quiet_load, args.max_wait)
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    runs = run(args)
    result = {
        "machine": machine(),
        "uptime_before": before,
        "quiet_wait": quiet,
        "started": started,
        "uptime_after": uptime(),
        "args": {"runs": args.runs, "seconds": args.seconds},
        "summary": summarise(runs),
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
