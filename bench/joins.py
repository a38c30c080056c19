"""Listener joins per second per core on the embedded server, alone and under a flood.

The server is pinned to CPU 0 (one core), the load generators (wrk) to CPU 1. A run is
`--seconds` of wrk posting joins with real anonymous tokens; the flood is a second wrk
posting forged tokens and malformed bodies at the same time. Prints a Markdown table of
medians over `--runs` runs, alone and flooded measured side by side, run after run.

    .venv/bin/python bench/joins.py --runs 5 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

JOIN_LUA = """
local tokens = {%s}
local i = 0
request = function()
  i = i + 1
  local t = tokens[(i %% #tokens) + 1]
  return wrk.format("POST", "%s", {["Authorization"] = "Bearer " .. t,
    ["Content-Type"] = "application/json"}, "{}")
end
"""

FLOOD_LUA = """
local i = 0
local bodies = {"{", "{\\"ticket\\": 5}", "[]", "{\\"ticket\\": \\"x.y.z\\"}", "null"}
request = function()
  i = i + 1
  if i %% 2 == 0 then
    return wrk.format("POST", "%s", {["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged",
      ["Content-Type"] = "application/json"}, "{}")
  end
  return wrk.format("POST", "%s", {["Authorization"] = "Bearer %s",
    ["Content-Type"] = "application/json"}, bodies[(i %% #bodies) + 1])
end
"""


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "MAJLIS_WRITE_RATE_IP": "1000000",
        "MAJLIS_WRITE_BURST_IP": "1000000",
        "MAJLIS_WRITE_RATE_USER": "1000000",
        "MAJLIS_WRITE_BURST_USER": "1000000",
        "MAJLIS_AUTH_RATE_IP": "1000",
        "MAJLIS_AUTH_BURST_IP": "100000",
        "MAJLIS_MAX_REQUESTS_PER_IP": "100000",
        "MAJLIS_ADMISSION_RATE": "1000000000",
        "MAJLIS_ADMISSION_BURST": "1000000000",
        "MAJLIS_MEDIA": "false",
    }
    majlis = str(Path(sys.executable).with_name("majlis"))
    cmd = ["taskset", "-c", "0", majlis, "serve", "--port", "0", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, match.group(0)


def prepare(base: str, n_tokens: int) -> tuple[str, list[str]]:
    with httpx.Client(base_url=base, timeout=10) as client:
        session = client.post(
            "/api/v1/auth/register", json={"username": "benchhost", "password": "benchpass1"}
        ).json()
        headers = {"Authorization": f"Bearer {session['token']}"}
        space = client.post("/api/v1/spaces", json={"title": "bench"}, headers=headers).json()
        tokens = [client.post("/api/v1/auth/anonymous").json()["token"] for _ in range(n_tokens)]
        check = client.post(
            f"/api/v1/spaces/{space['id']}/join",
            json={},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        if check.status_code != 200:
            raise SystemExit(f"join check failed: {check.status_code} {check.text}")
    return space["id"], tokens


def wrk(base: str, script: Path, seconds: int, connections: int) -> tuple[float, dict[str, int]]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, {"non_2xx": int(non2xx.group(1)) if non2xx else 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    data_dir = Path(tempfile.mkdtemp(prefix="majlis-bench-"))
    proc, base = start_server(data_dir)
    try:
        space_id, tokens = prepare(base, 200)
        path = f"/api/v1/spaces/{space_id}/join"
        join_lua = data_dir / "join.lua"
        join_lua.write_text(JOIN_LUA % (",".join(f'"{t}"' for t in tokens), path))
        flood_lua = data_dir / "flood.lua"
        flood_lua.write_text(FLOOD_LUA % (path, path, tokens[0]))
        alone, flooded, flood_rates = [], [], []
        for _ in range(args.runs):
            rate, info = wrk(base, join_lua, args.seconds, args.connections)
            if info["non_2xx"]:
                raise SystemExit(f"joins failed: {info}")
            alone.append(rate)
            flood = subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "1",
                    "wrk",
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{args.seconds + 2}s",
                    "-s",
                    str(flood_lua),
                    base,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1)
            rate, info = wrk(base, join_lua, args.seconds, args.connections)
            flood_out = flood.communicate()[0]
            flood_rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", flood_out).group(1)))  # type: ignore[union-attr]
            flooded.append(rate)
        result = {
            "joins_per_s_alone_median": statistics.median(alone),
            "joins_per_s_flooded_median": statistics.median(flooded),
            "bad_requests_per_s_median": statistics.median(flood_rates),
            "ratio_flooded_to_alone": statistics.median(flooded) / statistics.median(alone),
            "runs_alone": alone,
            "runs_flooded": flooded,
        }
        print(json.dumps(result, indent=2))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
