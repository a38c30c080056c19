"""ClusterOrigin: a control-plane worker's /hls, for spaces run on any node.

The request (already past PlaybackGuard, token stripped) goes to the node holding the
space's lease, streamed both ways as the node writes: a blocking playlist reload is held
there, a segment stream flows part by part. Spaces no node holds (ended ones: replays)
and spaces this process's own node runs are served by the local origin. Behind an edge
this hop costs one request per new URL per edge, not per listener.

While a space moves (its node drains, and stops answering HTTP as it hands over; or its
node died and the space is being placed again), a listener's request is held and sent to
the space's next node, for up to MOVE_WAIT, instead of failing: players such as ffmpeg
stop for good after a few failed playlist reloads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.plane import NODE_KEY_HEADER, NodeInfo

__all__ = ["ClusterOrigin"]

log = logging.getLogger(__name__)

# What a node's answer keeps on its way to the listener (or the edge).
# Not Content-Length: if the node dies mid-answer the response ends short, and a
# chunked one ends cleanly where a declared length would be a protocol error.
_PASSED = frozenset({b"content-type", b"cache-control", b"retry-after", b"last-modified"})
# Held requests last up to three target durations at the node; give it a margin.
READ_TIMEOUT = 30.0
# A handover waits up to 3 s for speakers to move; a dead node is found in about one.
MOVE_WAIT, MOVE_POLL = 5.0, 0.1


class ClusterOrigin:
    def __init__(
        self,
        owner: Callable[[str], Awaitable[NodeInfo | None]],
        local: ASGIApp,
        key: str,
        local_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owner = owner
        self._local = local
        self._key = key
        self._local_id = local_id
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(5.0, read=READ_TIMEOUT), limits=httpx.Limits(max_connections=None)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._local(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :]
        space_id = path.strip("/").split("/", 1)[0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MOVE_WAIT
        while True:
            node = await self._owner(space_id)
            if node is None or node.node_id == self._local_id:
                await self._local(scope, receive, send)
                return
            response = None if node.draining else await self._ask(node, path, scope)
            if response is not None:
                await _relay(node, path, response, send)
                return
            if loop.time() >= deadline:
                await _unavailable(send)
                return
            await asyncio.sleep(MOVE_POLL)

    async def _ask(self, node: NodeInfo, path: str, scope: Scope) -> httpx.Response | None:
        """The node's answer, streaming; None if the node cannot be reached."""
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{node.url}/node/v1/hls{path}" + (f"?{query}" if query else "")
        request = self._client.build_request(
            scope["method"], url, headers={NODE_KEY_HEADER: self._key}
        )
        try:
            return await self._client.send(request, stream=True)
        except httpx.HTTPError:
            log.warning("media node %s unreachable for %s", node.node_id, path)
            return None


async def _relay(node: NodeInfo, path: str, response: httpx.Response, send: Send) -> None:
    try:
        headers = [(k, v) for k, v in response.headers.raw if k.lower() in _PASSED]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except httpx.HTTPError:
        # The node went away mid-answer: end the response; the player asks again.
        log.warning("media node %s broke off %s", node.node_id, path)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await response.aclose()


async def _unavailable(send: Send) -> None:
    body = json.dumps(
        {"error": "overloaded", "reason": "the media node is unreachable", "retry_after_ms": 1000}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
