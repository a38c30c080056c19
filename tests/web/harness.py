"""The web app tests' harness: a real server with the pages, Debian's chromium driven by
playwright-core from node_modules, fake-microphone WAV files made here (never downloaded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
CHROMIUM = os.environ.get("MAJLIS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(what: str, present: bool) -> None:
    """Skip when a browser-test tool is missing on a developer's machine; fail under CI."""
    if present:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing and CI=true: the browser tests must run")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def browser_tools() -> str:
    node = shutil.which("node")
    require("node", node is not None)
    require("chromium at " + CHROMIUM, Path(CHROMIUM).exists())
    require(
        "node_modules/playwright-core (run npm ci)", (NODE_MODULES / "playwright-core").is_dir()
    )
    require("node_modules/hls.js (run npm ci)", (NODE_MODULES / "hls.js").is_dir())
    assert node is not None
    return node


def write_tone(path: Path, frequency: float, seconds: float = 3.0, rate: int = 48000) -> Path:
    """A mono 16-bit sine at -10 dBFS: a whole number of cycles, so Chromium's loop is clean."""
    cycles = round(frequency * seconds)
    samples = np.arange(round(cycles / frequency * rate))
    signal = 0.316 * np.sin(2 * np.pi * frequency * samples / rate)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((signal * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="session")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {f: write_tone(folder / f"tone{f}.wav", f) for f in (440, 660)}


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, data: Path) -> None:
        self.process = process
        self.url = url
        self.data = data


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start_server(**env) → a running Majlis with the web routes on a free port."""
    started: list[subprocess.Popen[str]] = []

    def start(**env: str) -> Server:
        data = tmp_path / f"data{len(started)}"
        environment = {
            **os.environ,
            "MAJLIS_AUTH_BURST_IP": "200",
            "MAJLIS_AUTH_RATE_IP": "50",
            **env,
        }
        environment.pop("MAJLIS_CONFIG", None)
        data.mkdir(parents=True, exist_ok=True)
        majlis = str(Path(sys.executable).with_name("majlis"))
        process = subprocess.Popen(
            [majlis, "serve", "--port", "0", "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=(data / "server.log").open("w"),
            text=True,
            env=environment,
        )
        started.append(process)
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "majlis listening on " in line:
                url = line.split("majlis listening on ", 1)[1].split()[0]
                return Server(process, url, data)
        process.kill()
        raise RuntimeError(f"server did not start: {process.stdout.read()}")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def run_scenario(
    node: str,
    scenario: str,
    url: str,
    *wavs: Path,
    timeout: float = 100,
    env: dict[str, str] | None = None,
) -> dict[str, object]:
    """Run tests/web/flows.mjs SCENARIO and return its JSON report."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [node, str(HERE / "flows.mjs"), scenario, url, str(SCREENSHOTS), *map(str, wavs)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(
            f"{scenario}: no report (exit {result.returncode})\n{result.stdout}\n{result.stderr}"
        )
    report: dict[str, object] = json.loads(lines[-1])
    return report


def explain(report: dict[str, object]) -> str:
    checks = report.get("checks", [])
    assert isinstance(checks, list)
    lines = [f"{'ok ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail'][:800]}" for c in checks]
    lines += [f"page error: {e}" for e in report.get("errors", [])]  # type: ignore[attr-defined]
    return "\n".join(lines)
