"""Real processes for the edge tests: `majlis serve`, `majlis edge` (nginx and Varnish from
Debian) in front of it, and the edge's own counters (varnishstat) to count origin fetches."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import require_service
from e2e.harness import MAJLIS, Api, Server, speak, start_server, stop_server, wait_line
from majlis.edge import read_counter

# The secret of every server here, so tests can sign and forge playback tokens.
SECRET = "edge-test-secret-" + "0123456789abcdef" * 3


TONE = 440.0


def require_varnish() -> None:
    require_service("varnishd (apt-get install varnish)", shutil.which("varnishd") is not None)
    require_service(
        "nginx with nchan and njs (apt-get install nginx-light libnginx-mod-nchan "
        "libnginx-mod-http-js)",
        shutil.which("nginx") is not None
        and Path("/usr/lib/nginx/modules/ngx_nchan_module.so").exists(),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Edge:
    origin: str
    port: int
    workdir: Path
    env: dict[str, str]
    args: tuple[str, ...] = ()
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [MAJLIS, "edge", "--origin", self.origin, "--port", str(self.port)]
        cmd += ["--workdir", str(self.workdir), "--cache-mb", "32", *self.args]
        log = self.workdir.with_suffix(".log").open("a")
        self.process = subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        log.close()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "majlis edge listening on" not in line:
            self.stop()
            errors = self.workdir.with_suffix(".log").read_text(errors="replace")
            raise AssertionError(f"majlis edge did not start: {line!r}\n{errors[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def counter(self, name: str) -> int:
        """One of Varnish's own counters, e.g. MAIN.backend_req (requests to the origin).
        Worker threads add theirs to the totals in batches: read until two reads 0.3 s
        apart agree."""
        value = self._read_counter(name)
        for _ in range(10):
            time.sleep(0.3)
            again = self._read_counter(name)
            if again == value:
                break
            value = again
        return value

    def _read_counter(self, name: str) -> int:
        return read_counter(self.workdir, name)

    def origin_fetches(self) -> int:
        return self.counter("MAIN.backend_req")


@dataclass
class Deployment:
    server: Server
    edge: Edge


@contextlib.contextmanager
def deployment(tmp: Path, edge_args: tuple[str, ...] = (), **config: str) -> Iterator[Deployment]:
    """A server whose listeners are sent to an edge in front of it."""
    require_varnish()
    port = free_port()
    config = {"secret_key": SECRET, "edge_url": f"http://127.0.0.1:{port}", **config}
    server = start_server(tmp / "data", **config)
    # Not under pytest's own temporary directory: varnishd's user could not reach it.
    workdir = Path(tempfile.mkdtemp(prefix="majlis-edge-test-"))
    edge = Edge(server.url, port, workdir, server.env, edge_args)
    try:
        edge.start()
        wait_ok(f"{edge.url}/healthz")
        yield Deployment(server, edge)
    finally:
        edge.stop()
        stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.with_suffix(".log").unlink(missing_ok=True)


@contextlib.contextmanager
def speaking(running: Deployment, title: str, *guests: str) -> Iterator[tuple[Api, str]]:
    """A live space on `running` whose host sends the tone (for a minute), with a segment
    of it made; the API client (host and `guests` registered) and the space's id."""
    api = Api(running.server)
    for name in ("host", *guests):
        api.register(name)
    space = api.ok("host", "POST", "/api/v1/spaces", {"title": title})["id"]
    speaker = speak(running.server, space, "host", TONE, 60)
    try:
        wait_line(speaker, "connected")
        time.sleep(3.0)
        yield api, space
    finally:
        speaker.terminate()
        speaker.wait(10)
        api.close()


def wait_ok(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


@pytest.fixture
def edge_deployment(tmp_path: Path) -> Iterator[Deployment]:
    with deployment(tmp_path) as running:
        yield running


@dataclass
class Live:
    deployment: Deployment
    api: Api
    space: str
    other_space: str
    speaker: subprocess.Popen[str]

    @property
    def edge(self) -> str:
        return self.deployment.edge.url

    def join(self) -> dict[str, str]:
        anon = httpx.post(f"{self.deployment.server.url}/api/v1/auth/anonymous").json()
        answer = httpx.post(
            f"{self.deployment.server.url}/api/v1/spaces/{self.space}/join",
            json={},
            headers={"Authorization": f"Bearer {anon['token']}"},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with deployment(tmp_path_factory.mktemp("edge")) as running:
        api = Api(running.server)
        api.register("host")
        api.register("other")
        space = api.ok("host", "POST", "/api/v1/spaces", {"title": "Through the edge"})["id"]
        other = api.ok("other", "POST", "/api/v1/spaces", {"title": "Another"})["id"]
        speaker = speak(running.server, space, "host", TONE, 200)
        try:
            wait_line(speaker, "connected")
            time.sleep(3.0)  # a segment with the tone in it
            yield Live(running, api, space, other, speaker)
        finally:
            speaker.terminate()
            speaker.wait(10)
            api.close()
