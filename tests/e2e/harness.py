"""Real processes for end-to-end tests: a `majlis serve`, API calls, CLI clients."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MAJLIS = str(Path(sys.executable).with_name("majlis"))
PASSWORD = "password-e2e"


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    env: dict[str, str] = field(default_factory=dict)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def start_server(data_dir: Path, port: int = 0, command: str = "serve", **config: str) -> Server:
    """`majlis serve` (or `majlis media`, a node alone) with MAJLIS_* from `config`."""
    env = {**os.environ, "MAJLIS_PASSWORD": PASSWORD}
    env.update({f"MAJLIS_{k.upper()}": v for k, v in config.items()})
    env.setdefault("MAJLIS_WRITE_RATE_IP", "1000")
    env.setdefault("MAJLIS_WRITE_BURST_IP", "1000")
    env.setdefault("MAJLIS_AUTH_RATE_IP", "100")
    env.setdefault("MAJLIS_AUTH_BURST_IP", "100")
    env.setdefault("MAJLIS_MAX_REQUESTS_PER_IP", "1000")  # every player here is 127.0.0.1
    env.setdefault("MAJLIS_OVERLOAD_TARGET_MS", "0")  # a busy CI box must not shed the tests
    cmd = [MAJLIS, command, "--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=None, text=True)
    line = process.stdout.readline() if process.stdout else ""
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        process.kill()
        raise RuntimeError(f"majlis {command} did not start: {line!r}")
    return Server(match.group(0), data_dir, process, env)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


@contextmanager
def running_server(data_dir: Path, **config: str) -> Iterator[Server]:
    server = start_server(data_dir, **config)
    try:
        yield server
    finally:
        stop_server(server)


class Api:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=20)
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def register(self, username: str) -> str:
        answer = self.http.post(
            "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
        answer.raise_for_status()
        self.tokens[username] = answer.json()["token"]
        self.ids[username] = answer.json()["user"]["id"]
        return self.ids[username]

    def login(self, username: str) -> None:
        answer = self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        answer.raise_for_status()
        self.tokens[username] = answer.json()["token"]

    def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.http.request(method, path, json=body, headers=headers)

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        answer = self.call(who, method, path, body)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path} → {answer.status_code} {answer.text}")
        return answer.json() if answer.content else None

    def close(self) -> None:
        self.http.close()


def speak(
    server: Server, space_id: str, user: str, tone: float, seconds: float, *extra: str
) -> subprocess.Popen[str]:
    cmd = [
        MAJLIS,
        "speak",
        space_id,
        "--server",
        server.url,
        "--user",
        user,
        "--tone",
        str(tone),
        "--duration",
        str(seconds),
        *extra,
    ]
    return subprocess.Popen(cmd, env=server.env, stdout=subprocess.PIPE, text=True)


def record_live(url: str, out: Path, seconds: float, rate: int = 48000) -> None:
    """ffmpeg, a player we did not write, records `seconds` of a live playlist to a mono
    WAV file, starting at its newest segment."""
    ffmpeg = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-live_start_index",
            "-1",
            "-i",
            url,
            "-t",
            str(seconds),
            "-ac",
            "1",
            "-ar",
            str(rate),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ffmpeg.returncode == 0, ffmpeg.stderr


def wait_line(process: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline() if process.stdout else ""
        if needle in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"never saw {needle!r} (exit {process.poll()})")


def wait_replay(api: Api, space_id: str, timeout: float = 30) -> str:
    """The ended playlist: ending is asynchronous (the node flushes the last segment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = api.http.get(f"/hls/{space_id}/index.m3u8").text
        if "#EXT-X-ENDLIST" in text:
            return text
        time.sleep(0.2)
    raise AssertionError("the replay never closed with EXT-X-ENDLIST")
