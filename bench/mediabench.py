"""Shared helpers for the media-plane benchmarks (latency.py, space_cpu.py, listeners.py).

Not a benchmark itself. What lives here: starting `majlis serve` pinned to CPU 0 with rate
limits raised, waiting for the machine to be quiet (1-minute load average), measuring CPU
from /proc (per process and per core, so CPU taken by other people's processes during a
window is visible), reading /metrics, the API calls that put people on a stage, and the
onset finder used by the latency measurement.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

MAJLIS = str(Path(sys.executable).with_name("majlis"))
PASSWORD = "bench-password-1"
SERVER_CPU = 0
CLIENT_CPU = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Everything a benchmark does through the API must never hit a rate limit.
UNLIMITED_ENV = {
    "MAJLIS_WRITE_RATE_IP": "1000000",
    "MAJLIS_WRITE_BURST_IP": "1000000",
    "MAJLIS_WRITE_RATE_USER": "1000000",
    "MAJLIS_WRITE_BURST_USER": "1000000",
    "MAJLIS_AUTH_RATE_IP": "100000",
    "MAJLIS_AUTH_BURST_IP": "100000",
    "MAJLIS_MAX_REQUESTS_PER_IP": "100000",
    "MAJLIS_ADMISSION_RATE": "1000000000",
    "MAJLIS_ADMISSION_BURST": "1000000000",
    "MAJLIS_PASSWORD": PASSWORD,
}


# --- the machine ---------------------------------------------------------------------------


def pin_self_to_client_cpu() -> None:
    """Load generators (this process, its threads and children) run on CPU 1."""
    os.sched_setaffinity(0, {CLIENT_CPU})


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def wait_for_quiet(threshold: float, max_wait: float) -> dict[str, float]:
    """Wait until the 1-minute load average is below `threshold` (at most `max_wait` s)."""
    started = time.monotonic()
    load = os.getloadavg()[0]
    while load >= threshold and time.monotonic() - started < max_wait:
        time.sleep(5.0)
        load = os.getloadavg()[0]
    return {"load_1m": round(load, 2), "waited_s": round(time.monotonic() - started, 1)}


def _proc_jiffies(pid: int) -> int:
    """utime + stime of a whole process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def _all_processes() -> dict[tuple[int, int], int]:
    """(pid, start time) → utime + stime for every process on the machine."""
    out: dict[tuple[int, int], int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        out[(int(entry.name), int(fields[19]))] = int(fields[11]) + int(fields[12])
    return out


def _sched_wait_ns(pid: int) -> int:
    """Time the process's threads spent runnable but waiting for a CPU (ns, since start;
    threads that ended are not counted)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


def _cpu_pressure_us() -> int:
    """PSI: total µs during which at least one task waited for a CPU (0 if unsupported)."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0
    return int(first.rsplit("total=", 1)[1])


def _cpu_jiffies() -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks per CPU since boot."""
    out: dict[int, tuple[int, int]] = {}
    with open("/proc/stat") as stat:
        for line in stat:
            match = re.match(r"cpu(\d+) (.*)", line)
            if match:
                values = [int(v) for v in match.group(2).split()]
                idle = values[3] + values[4]  # idle + iowait
                out[int(match.group(1))] = (sum(values[:8]) - idle, sum(values[:8]))
    return out


@dataclass
class CpuWindow:
    """CPU used by some processes over a window, and what else ran on the machine.

    `<name>_cpu_pct`: utime+stime of the process (all threads), % of one core.
    `others_cpu_pct`: CPU of every other process on the machine (other people's tests,
    kernel threads), from a scan of /proc at both ends of the window; processes that both
    started and ended inside the window are missed. `cpu{N}_busy_pct` comes from the
    tick-sampled /proc/stat and is only indicative: the mixer's 20 ms clock is in phase
    with the timer tick, so sampling aliases (it can show less than our own processes used).
    `cpu_pressure_some_pct`: PSI, share of the window in which some task (ours included)
    waited for a CPU.
    `<name>_runq_wait_pct`: time the process's threads were runnable but not running
    (/proc/PID/task/*/schedstat), % of the window; for the server pinned to CPU 0 this is
    waiting behind its own threads plus anything else that ran on CPU 0."""

    pids: dict[str, int]
    _start: float = 0.0
    _proc: dict[str, int] = field(default_factory=dict)
    _wait: dict[str, int] = field(default_factory=dict)
    _everyone: dict[tuple[int, int], int] = field(default_factory=dict)
    _pressure: int = 0
    _cpus: dict[int, tuple[int, int]] = field(default_factory=dict)
    _load: float = 0.0

    def __post_init__(self) -> None:
        self._start = time.monotonic()
        self._proc = {name: _proc_jiffies(pid) for name, pid in self.pids.items()}
        self._wait = {name: _sched_wait_ns(pid) for name, pid in self.pids.items()}
        self._cpus = _cpu_jiffies()
        self._everyone = _all_processes()
        self._pressure = _cpu_pressure_us()
        self._load = os.getloadavg()[0]

    def finish(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._start
        proc = {name: _proc_jiffies(pid) for name, pid in self.pids.items()}
        cpus = _cpu_jiffies()
        everyone = _all_processes()
        out: dict[str, float] = {"window_s": round(elapsed, 2)}
        for name, before in self._proc.items():
            used = proc[name] - before
            out[f"{name}_cpu_pct"] = round(100.0 * used / CLOCK_TICKS / elapsed, 1)
            waited = _sched_wait_ns(self.pids[name]) - self._wait[name]
            out[f"{name}_runq_wait_pct"] = round(100.0 * waited / 1e9 / elapsed, 1)
        for cpu, (busy, _total) in cpus.items():
            used = busy - self._cpus[cpu][0]
            out[f"cpu{cpu}_busy_pct"] = round(100.0 * used / CLOCK_TICKS / elapsed, 1)
        ours = set(self.pids.values())
        other = sum(
            ticks - self._everyone.get(key, 0)
            for key, ticks in everyone.items()
            if key[0] not in ours
        )
        out["others_cpu_pct"] = round(100.0 * other / CLOCK_TICKS / elapsed, 1)
        waited = _cpu_pressure_us() - self._pressure
        out["cpu_pressure_some_pct"] = round(100.0 * waited / 1e6 / elapsed, 1)
        out["load_1m_start"] = round(self._load, 2)
        out["load_1m_end"] = round(os.getloadavg()[0], 2)
        return out


# --- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> dict[str, int]:
        """The server's processes for CpuWindow: `server` (HTTP, origin) and, when media
        runs in a child process (the default), `worker` (mixer, ingest, packager)."""
        worker = int(self.metrics().get("majlis_media_worker_pid", 0))
        return {"server": self.pid, **({"worker": worker} if worker else {})}

    def metrics(self) -> dict[str, float]:
        """`name{space="…"}` → value, as /metrics reports them."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def space_metrics(self, space_id: str) -> dict[str, float]:
        suffix = f'{{space="{space_id}"}}'
        return {
            name[: -len(suffix)]: value
            for name, value in self.metrics().items()
            if name.endswith(suffix)
        }


@contextmanager
def running_server(
    extra_env: dict[str, str] | None = None, program: Sequence[str] = (MAJLIS,)
) -> Iterator[Server]:
    """`majlis serve` on a fresh data directory, pinned to CPU 0 with taskset. `program`:
    what runs as `majlis` (a bench's own wrapper of the CLI)."""
    data_dir = Path(tempfile.mkdtemp(prefix="majlis-bench-"))
    env = {**os.environ, **UNLIMITED_ENV, **(extra_env or {})}
    cmd = [
        "taskset",
        "-c",
        str(SERVER_CPU),
        *program,
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir / "data"),
    ]
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        process.kill()
        raise SystemExit(f"majlis serve did not start: {line!r} (see {data_dir}/server.log)")
    stdout = process.stdout
    threading.Thread(target=lambda: stdout.read(), daemon=True).start()
    failed = True
    try:
        yield Server(match.group(0), process, data_dir, env)
        failed = False
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
        if failed:  # the log is what explains a failed run: keep it, whatever BENCH_KEEP says
            kept = Path(tempfile.gettempdir()) / f"{data_dir.name}-server.log"
            shutil.copyfile(data_dir / "server.log", kept)
            print(f"the bench failed; the server's log is kept at {kept}", file=sys.stderr)
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(data_dir, ignore_errors=True)


# --- the API -------------------------------------------------------------------------------


class Api:
    """Blocking API calls for setting a stage up (never during a measurement window)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def register(self, username: str) -> str:
        answer = self.http.post(
            "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
        answer.raise_for_status()
        self.tokens[username] = answer.json()["token"]
        self.ids[username] = answer.json()["user"]["id"]
        return self.ids[username]

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        answer = self.http.request(method, path, json=body, headers=headers)
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path} → {answer.status_code} {answer.text}")
        return answer.json() if answer.content else None

    def create_space(self, host: str, title: str) -> dict[str, Any]:
        space: dict[str, Any] = self.ok(host, "POST", "/api/v1/spaces", {"title": title})
        return space

    def stage(self, space_id: str, host: str, others: Sequence[str]) -> None:
        """Up to two co-hosts first, then approved speakers (the host is on stage already)."""
        for index, user in enumerate(others):
            if index < 2:
                self.ok(
                    host,
                    "POST",
                    f"/api/v1/spaces/{space_id}/cohosts",
                    {"user_id": self.ids[user]},
                )
            else:
                self.ok(user, "POST", f"/api/v1/spaces/{space_id}/requests")
                self.ok(
                    host, "POST", f"/api/v1/spaces/{space_id}/requests/{self.ids[user]}/approve"
                )

    def end_space(self, host: str, space_id: str) -> None:
        self.ok(host, "POST", f"/api/v1/spaces/{space_id}/end")

    def playback(self, space_id: str) -> tuple[str, str]:
        """(playlist URL, playback token) for a new anonymous listener."""
        token = self.http.post("/api/v1/auth/anonymous").json()["token"]
        answer = self.http.post(
            f"/api/v1/spaces/{space_id}/join",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"join → {answer.status_code} {answer.text}")
        body = answer.json()
        return str(body["playback_url"]), str(body["playback_token"])


def offer_sender(server_url: str, token: str, space_id: str) -> Any:
    """A SpeakerClient `send_offer` that posts to the API with a fresh async client."""

    async def send_offer(sdp: str) -> str:
        async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
            answer = await http.post(
                f"/api/v1/spaces/{space_id}/rtc/offer",
                json={"sdp": sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {token}"},
            )
        if answer.status_code != 200:
            raise RuntimeError(f"offer → {answer.status_code} {answer.text}")
        return str(answer.json()["sdp"])

    return send_offer


# --- numbers -------------------------------------------------------------------------------


# A window is "clean" when processes other than ours used at most this much CPU (in % of one
# core, both cores together) during it. Our own loopback traffic's kernel work lands here too.
CLEAN_OTHERS_PCT = 25.0


def is_clean(cpu: dict[str, float]) -> bool:
    return cpu["others_cpu_pct"] <= CLEAN_OTHERS_PCT


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 1)


def find_onsets(
    samples: npt.NDArray[np.float32], threshold: float, min_silence: int
) -> npt.NDArray[np.int64]:
    """Indices where |x| first exceeds `threshold` after at least `min_silence` samples
    below it (the start of the stream does not count as silence)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return np.zeros(0, dtype=np.int64)
    gaps = np.flatnonzero(np.diff(loud) > min_silence) + 1
    onsets = loud[gaps]
    if loud[0] >= min_silence:
        onsets = np.concatenate(([loud[0]], onsets))
    return onsets.astype(np.int64)
