"""Launch-night storms against the embedded server (issue 13): how fast refusals are, what a
flood does to other people's reads, how a join storm is answered, and what floods of
forged and logged-out tokens cost.

`majlis serve` (SQLite, in-process bus, media off) is pinned to CPU 0; the load generators
(`wrk`, Debian's, one thread each) to CPU 1. All traffic goes to 127.0.0.1; every phase
lasts `--seconds`. Each wrk counts its answers by status and reports p50/p99/max of all
its answers. Phases, each `--runs` times, in rotating order:

Server A, shipped limits (writes 50/s burst 100 per IP, 10/s burst 30 per user; logins
2/s burst 10 per IP):
- reads_alone: 8 connections read `GET /api/v1/spaces/{id}`.
- reads_writes_flood: the same reads while 64 connections post space creations with a
  valid token as fast as they can: nearly every answer is a 429, so that wrk's
  percentiles are the refusals'.
- reads_login_flood: the same reads while 64 connections post wrong-password logins.

Server B, admission as shipped (500/s ceiling, burst 1,000, adaptive at 50 ms) and logins
limited as shipped, write limits raised (every joiner comes from 127.0.0.1):
- joins: 256 connections post joins to a fresh space, rotating 5,000 anonymous tokens
  (they never poll their tickets: a crowd that walks away), and 8 more connections are
  the legitimate joiners measured on their own (2,000 other anonymous tokens), started
  LEAD_S before the storm so that their connections are open (as for the readers above).
- joins_login_flood: the same, with the login flood of server A on top.
- joins_forged_flood: the same, with 64 more connections posting joins with forged tokens
  on top (issue 13's R1: a join storm plus an invalid-token flood).
- forged / revoked: the storm's tokens are all forged (another key), or all logged out.
/metrics is read every 0.25 s for the admission rate and the loop's standing delay.

    flock /tmp/majlis-bench.lock .venv/bin/python bench/storm.py --runs 3 --seconds 10 \
        --out bench/results/storm.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from majlis.config import load_config
from mediabench import (
    CLIENT_CPU,
    CpuWindow,
    Server,
    machine,
    running_server,
    wait_for_quiet,
)

V1 = "/api/v1"
# The measured wrk starts this long before the flood: its connections are opened on a calm
# server. In trial runs, 8 connections opened during a flood got their first answers only
# after 5-8 s (the accept queue; not measured here). Costs: the first 3 % of its window is
# calm.
LEAD_S = 0.3
PASSWORD = "bench-password-1"
STORM_TOKENS = 5000

# wrk: one request generator per phase; counts answers by status and prints one JSON line.
LUA_COMMON = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
s2xx, s202, s401, s429, s503, sother = 0, 0, 0, 0, 0, 0
function response(status, headers, body)
  if status == 202 then s202 = s202 + 1
  elseif status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  else sother = sother + 1 end
end
function done(summary, latency, requests)
  local t = {s2xx = 0, s202 = 0, s401 = 0, s429 = 0, s503 = 0, sother = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, ' ..
    '"socket_errors": %d, "s2xx": %d, "s202": %d, "s401": %d, "s429": %d, "s503": %d, ' ..
    '"sother": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect + e.read + e.write + e.timeout, t.s2xx, t.s202, t.s401, t.s429, t.s503,
    t.sother))
end
"""

REQUEST_ROTATING = """
local tokens = {%(tokens)s}
local i = 0
request = function()
  i = i + 1
  local token = tokens[(i %% #tokens) + 1]
  return wrk.format("%(method)s", "%(path)s", {["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json"}, '%(body)s')
end
"""

REQUEST_PLAIN = """
request = function()
  return wrk.format("%(method)s", "%(path)s", {["Content-Type"] = "application/json"}, %(body)s)
end
"""


def lua(directory: Path, name: str, request: str) -> Path:
    path = directory / f"{name}.lua"
    path.write_text(LUA_COMMON + request)
    return path


def rotating(directory: Path, name: str, method: str, path: str, tokens: list[str]) -> Path:
    listed = ",".join(f'"{t}"' for t in tokens)
    body = "{}" if method == "POST" else ""
    request = REQUEST_ROTATING % {"tokens": listed, "method": method, "path": path, "body": body}
    return lua(directory, name, request)


def plain(directory: Path, name: str, method: str, path: str, body: str | None) -> Path:
    literal = "nil" if body is None else json.dumps(body)
    return lua(directory, name, REQUEST_PLAIN % {"method": method, "path": path, "body": literal})


def start_wrk(url: str, script: Path, seconds: float, connections: int) -> subprocess.Popen[str]:
    command = ["taskset", "-c", str(CLIENT_CPU), "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{round(seconds)}s", "--timeout", "10s", "-s", str(script), url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate()
    line = next((x for x in out.splitlines() if x.startswith("{")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result: {out!r} {err!r}")
    result: dict[str, Any] = json.loads(line)
    result["per_s"] = round(result["requests"] / result["seconds"], 1)
    return result


@contextlib.contextmanager
def sampling_metrics(server: Server) -> Iterator[dict[str, list[float]]]:
    """The admission rate, the loop's standing delay, the share of writes shed, the
    connections held, the writes shed as read and in the app and those that waited at the
    door so far, every 0.25 s, while it runs."""
    seen: dict[str, list[float]] = {
        "admission_rate": [],
        "loop_lag_ms": [],
        "behind": [],
        "shed_share": [],
        "holds": [],
        "shed_read": [],
        "shed_app": [],
        "in_flight": [],
        "door_waited": [],
    }
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            with contextlib.suppress(httpx.HTTPError):
                metrics = server.metrics()
                seen["admission_rate"].append(metrics.get("majlis_admission_rate", -1))
                seen["loop_lag_ms"].append(metrics.get("majlis_loop_lag_seconds", 0) * 1000)
                seen["behind"].append(metrics.get("majlis_admission_behind", 0))
                seen["shed_share"].append(metrics.get("majlis_shed_share", 0))
                seen["holds"].append(metrics.get("majlis_connection_holds_total", 0))
                seen["shed_read"].append(metrics.get('majlis_shed_total{stage="read"}', 0))
                seen["shed_app"].append(metrics.get('majlis_shed_total{stage="app"}', 0))
                seen["in_flight"].append(metrics.get("majlis_http_in_flight", 0))
                seen["door_waited"].append(metrics.get("majlis_door_waited_total", 0))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


# --- set-up ---------------------------------------------------------------------------------


def shipped_limits() -> dict[str, str]:
    """The shipped defaults of the limits mediabench raises, put back."""
    config = load_config(environ={}, flags={})
    keys = ("write_rate_ip", "write_burst_ip", "write_rate_user", "write_burst_user")
    keys += ("auth_rate_ip", "auth_burst_ip", "admission_rate", "admission_burst")
    return {f"MAJLIS_{k.upper()}": str(getattr(config, k)) for k in keys}


def storm_limits() -> dict[str, str]:
    """Admission and login limits as shipped; the write limits per IP and per user out of
    the way (every joiner comes from 127.0.0.1)."""
    shipped = shipped_limits()
    keys = ("ADMISSION_RATE", "ADMISSION_BURST", "AUTH_RATE_IP", "AUTH_BURST_IP")
    return {f"MAJLIS_{k}": shipped[f"MAJLIS_{k}"] for k in keys}


def anonymous_tokens(http: httpx.Client, n: int) -> list[str]:
    return [http.post(f"{V1}/auth/anonymous").json()["token"] for _ in range(n)]


def host_and_space(http: httpx.Client, username: str) -> tuple[str, str]:
    answer = http.post(f"{V1}/auth/register", json={"username": username, "password": PASSWORD})
    answer.raise_for_status()
    token = answer.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    space = http.post(f"{V1}/spaces", json={"title": "storm"}, headers=headers).json()
    return token, space["id"]


def logged_out(http: httpx.Client, n: int) -> list[str]:
    """Session tokens of real users, each logged out (the revocation is on the bus).
    Registering is limited per IP as shipped: wait as the server says."""
    out = []
    for i in range(n):
        body = {"username": f"gone{i}", "password": PASSWORD}
        answer = http.post(f"{V1}/auth/register", json=body)
        while answer.status_code == 429:
            time.sleep(int(answer.headers["retry-after-ms"]) / 1000)
            answer = http.post(f"{V1}/auth/register", json=body)
        token = answer.json()["token"]
        http.post(f"{V1}/auth/logout", headers={"Authorization": f"Bearer {token}"})
        out.append(token)
    return out


def forged(n: int) -> list[str]:
    """Well-formed JWTs signed with a key the server does not have."""
    import jwt  # the bench's only use of it

    return [
        jwt.encode(
            {"sub": f"anon:f{i}", "aud": "majlis:anon", "jti": str(i), "exp": time.time() + 3600},
            os.urandom(32),
            algorithm="HS256",
        )
        for i in range(n)
    ]


# --- phases ---------------------------------------------------------------------------------


def window(server: Server, processes: list[subprocess.Popen[str]]) -> CpuWindow:
    pids = {"server": server.pid, "bench": os.getpid()}
    pids |= {f"wrk{i}": p.pid for i, p in enumerate(processes)}
    return CpuWindow(pids)


def close_window(cpu: CpuWindow, opened: float, seconds: float) -> dict[str, float]:
    """Closed just before wrk ends: a process that has exited can no longer be read."""
    time.sleep(max(0.0, opened + seconds - 0.4 - time.monotonic()))
    return _server_cpu(cpu.finish())


def flood_script(d: Path, kind: str, token: str) -> Path:
    """login: wrong-password logins; writes: space creations with a valid token (a valid
    body, so anything that got past the limits would really create a space)."""
    if kind == "login":
        login = json.dumps({"username": "stormhost", "password": "wrong-password-1"})
        return plain(d, "login", "POST", f"{V1}/auth/login", login)
    script = rotating(d, "create", "POST", f"{V1}/spaces", [token])
    script.write_text(script.read_text().replace("'{}'", '\'{"title": "flood"}\''))
    return script


def phase_reads(
    server: Server, d: Path, space_id: str, token: str, seconds: int, flood: str | None
) -> dict[str, Any]:
    reads_script = plain(d, "reads", "GET", f"{V1}/spaces/{space_id}", None)
    processes = []
    with sampling_metrics(server) as seen:
        # The measured client first: its connections are open before any flood (see
        # LEAD_S), so its figures are answers, not the accept queue.
        reads = start_wrk(server.url, reads_script, seconds, 8)
        time.sleep(LEAD_S)
        if flood:
            processes.append(start_wrk(server.url, flood_script(d, flood, token), seconds, 64))
        opened = time.monotonic()
        cpu = window(server, [reads, *processes])
        machine_use = close_window(cpu, opened, seconds)
        out: dict[str, Any] = {"reads": wrk_result(reads)}
        if processes:
            out["flood"] = wrk_result(processes[0])
    out["loop_lag_ms_max"] = max(seen["loop_lag_ms"]) if seen["loop_lag_ms"] else None
    out["cpu"] = machine_use
    return out


def phase_joins(
    server: Server,
    d: Path,
    space_id: str,
    storm: list[str],
    legit: list[str],
    seconds: int,
    login_flood: bool = False,
    token_flood: list[str] | None = None,
) -> dict[str, Any]:
    """`token_flood`: joins with these (bad) tokens from 64 more connections, on top."""
    path = f"{V1}/spaces/{space_id}/join"
    script = rotating(d, "storm", "POST", path, storm)
    legit_script = rotating(d, "legit", "POST", path, legit)
    with sampling_metrics(server) as seen:
        joiners = start_wrk(server.url, legit_script, seconds, 8)
        time.sleep(LEAD_S)
        process = start_wrk(server.url, script, seconds, 256)
        flooding = []
        if login_flood:
            flooding.append(start_wrk(server.url, flood_script(d, "login", ""), seconds, 64))
        if token_flood:
            bad = rotating(d, "bad", "POST", path, token_flood)
            flooding.append(start_wrk(server.url, bad, seconds, 64))
        opened = time.monotonic()
        machine_use = close_window(window(server, [process, joiners, *flooding]), opened, seconds)
        legit_result = wrk_result(joiners)
        result = wrk_result(process)
        flood = wrk_result(flooding[0]) if flooding else None
    rates = seen["admission_rate"]
    return {
        "storm": result,
        "flood": flood,
        "shares": _shares(result),
        "legit": legit_result,
        "legit_shares": _shares(legit_result),
        "admission_rate_min": min(rates) if rates else None,
        "admission_rate_median": statistics.median(rates) if rates else None,
        "behind_share": round(statistics.fmean(seen["behind"]), 3) if seen["behind"] else None,
        "loop_lag_ms_median": statistics.median(seen["loop_lag_ms"])
        if seen["loop_lag_ms"]
        else None,
        "loop_lag_ms_max": max(seen["loop_lag_ms"]) if seen["loop_lag_ms"] else None,
        "cpu": _server_cpu(machine_use),
    }


def _shares(result: dict[str, Any]) -> dict[str, float]:
    total = max(1, result["requests"])
    keys = ("s2xx", "s202", "s401", "s429", "s503", "sother")
    return {k: round(result[k] / total, 4) for k in keys}


def _server_cpu(cpu: dict[str, float]) -> dict[str, float]:
    keep = ("window_s", "server_cpu_pct", "wrk0_cpu_pct", "others_cpu_pct")
    keep += ("load_1m_start", "load_1m_end")
    return {k: cpu[k] for k in keep if k in cpu}  # the rest of CpuWindow is for media


# --- main -----------------------------------------------------------------------------------


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


READ_PHASES = {"reads_alone": None, "reads_writes_flood": "writes", "reads_login_flood": "login"}


def defaults_server_runs(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    env = {**shipped_limits(), "MAJLIS_MEDIA": "false"}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in READ_PHASES}
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        d = server.data_dir
        token, space_id = host_and_space(http, "stormhost")
        for run in range(args.runs):
            order = list(READ_PHASES)
            order = order[run % 3 :] + order[: run % 3]
            for name in order:
                time.sleep(2.0)  # let the previous phase's limits and sockets settle
                flood = READ_PHASES[name]
                result = phase_reads(server, d, space_id, token, args.seconds, flood)
                runs[name].append(result)
                print(name, json.dumps(result), file=sys.stderr)
    return runs


def storm_server_runs(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    env = {**storm_limits(), "MAJLIS_MEDIA": "false"}
    names = ["joins", "joins_login_flood", "joins_forged_flood", "forged", "revoked"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        d = server.data_dir
        token, _ = host_and_space(http, "stormhost")
        headers = {"Authorization": f"Bearer {token}"}
        storm = anonymous_tokens(http, STORM_TOKENS)
        legit = anonymous_tokens(http, 2000)
        bad_tokens = forged(STORM_TOKENS)
        floods = {
            "joins": storm,
            "joins_login_flood": storm,
            "joins_forged_flood": storm,
            "forged": bad_tokens,
            "revoked": logged_out(http, 20),
        }
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                time.sleep(2.0)
                # A fresh space each time: every storm starts with an empty waiting room.
                space = http.post(f"{V1}/spaces", json={"title": name}, headers=headers).json()
                result = phase_joins(
                    server,
                    d,
                    space["id"],
                    floods[name],
                    legit,
                    args.seconds,
                    login_flood=name == "joins_login_flood",
                    token_flood=bad_tokens if name == "joins_forged_flood" else None,
                )
                runs[name].append(result)
                print(name, json.dumps(result), file=sys.stderr)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    before = uptime()
    quiet = wait_for_quiet(args.quiet_load, args.max_wait)
    started = time.time()
    result: dict[str, Any] = {
        "machine": machine(),
        "uptime_before": before,
        "quiet_wait": quiet,
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "args": {"runs": args.runs, "seconds": args.seconds},
    }
    result["defaults"] = defaults_server_runs(args)
    result["storm"] = storm_server_runs(args)
    result["uptime_after"] = uptime()
    result["summary"] = summarise(result)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(result["summary"], indent=2))


def _median(values: list[Any]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.median(kept), 2) if kept else None


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Medians over runs: the figures docs/benchmarks.md quotes."""
    d, s = result["defaults"], result["storm"]

    def wrk_med(runs: list[dict[str, Any]], part: str, key: str) -> float | None:
        return _median([r[part][key] for r in runs])

    out: dict[str, Any] = {}
    for name in READ_PHASES:
        for key in ("per_s", "p50_ms", "p99_ms", "max_ms"):
            out[f"{name}_{key}"] = wrk_med(d[name], "reads", key)
        out[f"{name}_loop_lag_ms_max"] = _median([r["loop_lag_ms_max"] for r in d[name]])
        out[f"{name}_server_cpu_pct"] = _median([r["cpu"]["server_cpu_pct"] for r in d[name]])
        if READ_PHASES[name]:
            for key in ("per_s", "p50_ms", "p99_ms", "max_ms"):
                out[f"{name}_flood_{key}"] = wrk_med(d[name], "flood", key)
            out[f"{name}_flood_429_share"] = _median(
                [r["flood"]["s429"] / max(1, r["flood"]["requests"]) for r in d[name]]
            )
    for name in s:
        runs = s[name]
        out[f"{name}_storm_per_s"] = wrk_med(runs, "storm", "per_s")
        out[f"{name}_storm_p50_ms"] = wrk_med(runs, "storm", "p50_ms")
        out[f"{name}_storm_p99_ms"] = wrk_med(runs, "storm", "p99_ms")
        for share in ("s2xx", "s202", "s401", "s429", "s503"):
            out[f"{name}_storm_{share}_share"] = _median([r["shares"][share] for r in runs])
        for key in ("per_s", "p50_ms", "p99_ms", "max_ms"):
            out[f"{name}_legit_{key}"] = wrk_med(runs, "legit", key)
        for share in ("s2xx", "s202", "s429", "s503"):
            out[f"{name}_legit_{share}_share"] = _median([r["legit_shares"][share] for r in runs])
        out[f"{name}_admission_rate_min"] = _median([r["admission_rate_min"] for r in runs])
        out[f"{name}_behind_share"] = _median([r["behind_share"] for r in runs])
        out[f"{name}_loop_lag_ms_max"] = _median([r["loop_lag_ms_max"] for r in runs])
        out[f"{name}_server_cpu_pct"] = _median([r["cpu"]["server_cpu_pct"] for r in runs])
    all_cpu = [r["cpu"] for group in (d, s) for runs in group.values() for r in runs]
    out["others_cpu_pct_max"] = max(c["others_cpu_pct"] for c in all_cpu)
    return out


if __name__ == "__main__":
    main()
