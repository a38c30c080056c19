"""A local cluster of real processes: PostgreSQL and Redis, `majlis media` nodes and
control-plane workers (`majlis serve` with media = false), sharing one data directory as
`scripts/cluster up` runs them, or each with its own and the recordings on S3."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from api.conftest import fresh_database, postgres_reachable, redis_reachable
from conftest import redis_url, require_service
from e2e.harness import Server, start_server, stop_server
from majlis.media.recording.storage import StorageSettings
from s3_support import storage_config

# A Redis database of its own, flushed before each cluster: parallel runs of other suites
# use others.
CLUSTER_REDIS = redis_url(3)
SECRET = "cluster-test-secret-" + "0123456789abcdef" * 3


@dataclass
class Cluster:
    nodes: list[Server]
    workers: list[Server]
    data_dir: Path

    def owner(self, space_id: str) -> Server:
        """The node that runs `space_id` now (its /metrics count it)."""
        node = self.owner_or_none(space_id)
        assert node is not None, "no node runs the space"
        return node

    def owner_or_none(self, space_id: str) -> Server | None:
        running = [n for n in self.nodes if n.process.poll() is None and _runs(n)]
        assert len(running) <= 1, f"{len(running)} nodes run a space"
        return running[0] if running else None


def _runs(node: Server) -> bool:
    return spaces_run_by(node) > 0


def spaces_run_by(node: Server) -> int:
    """How many spaces the node runs now (its /metrics)."""
    text = httpx.get(f"{node.url}/metrics", timeout=5).text
    found = re.search(r"^majlis_media_spaces (\S+)$", text, re.M)
    return 0 if found is None else int(float(found.group(1)))


@contextlib.contextmanager
def cluster(
    tmp: Path,
    nodes: int = 2,
    workers: int = 2,
    store: StorageSettings | None = None,
    **config: str,
) -> Iterator[Cluster]:
    """With `store`, recordings go to that bucket and every process has a data directory
    of its own, as on separate machines; without, all share one directory. `config`:
    more settings for every process (caption_model, say)."""
    require_service("redis", redis_reachable())
    require_service("postgres", asyncio.run(postgres_reachable()))
    redis.Redis.from_url(CLUSTER_REDIS).flushdb()
    data = tmp / "data"
    with _database() as database:
        common = {"bus_url": CLUSTER_REDIS, "database_url": database, "secret_key": SECRET}
        common |= config
        if store is not None:
            common |= storage_config(store)
        started: list[Server] = []
        try:
            for i in range(nodes + workers):
                own = data if store is None else tmp / f"data-{i}"
                if i < nodes:
                    started.append(start_server(own, command="media", **common))
                else:
                    started.append(start_server(own, media="false", **common))
            yield Cluster(started[:nodes], started[nodes:], data)
        finally:
            for server in reversed(started):
                stop_server(server)


@contextlib.contextmanager
def _database() -> Iterator[str]:
    """A fresh PostgreSQL database for one cluster, dropped afterwards."""
    loop = asyncio.new_event_loop()
    manager = fresh_database()
    try:
        yield loop.run_until_complete(manager.__aenter__())
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))
        loop.close()


@contextlib.contextmanager
def events(server: Server, space_id: str, token: str) -> Iterator[ClientConnection]:
    """An accepted event socket on `server` (its first message is hello)."""
    url = server.url.replace("http://", "ws://") + f"/api/v1/spaces/{space_id}/events"
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        assert next_event(socket, "hello")["space_id"] == space_id
        yield socket


def next_event(socket: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of type `kind`, skipping others (presence, levels)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = json.loads(socket.recv(timeout=left))
        if message.get("type") == kind:
            return cast(dict[str, Any], message)
    pytest.fail(f"no {kind} event within {timeout} s")


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.2) -> float:
    """Seconds until `check()` is true; fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(step)
    pytest.fail(f"not within {timeout} s")
