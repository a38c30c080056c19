"""A loopback relay between a local player and the listener's media URL.

ffmpeg and ffplay keep the URL they were given for the whole session, but a playback token
lasts only `playback_ttl` and the heartbeat renews it, and an edge may restart under them.
The relay gives the player one stable URL on 127.0.0.1; each request is forwarded with the
newest token in the path, and an upstream that is briefly gone (an edge or a server
restarting) is retried with a growing, fully jittered wait (or the server's Retry-After)
instead of ending the player's session; once the listener's retry budget is spent, the
retries slow to one per RETRY_CAP_S, no more often than the player's own polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import time

import httpx

from majlis.client.retry import RetryBudget, retry_after_s, retry_delay

__all__ = ["TokenRelay"]

# How long a request may be retried before the player gets the error.
RETRY_FOR_S = 30.0
_RETRY_STATUS = frozenset({502, 503, 504})
_MAX_HEAD = 16384
RETRY_BASE_S = 0.25
RETRY_CAP_S = 4.0


class TokenRelay:
    def __init__(
        self,
        playback_url: str,
        token: str,
        *,
        budget: RetryBudget | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        marker = f"/{token}/"
        if marker not in playback_url:
            raise ValueError("the playback URL does not carry its token in the path")
        self._base, _, _ = playback_url.partition(marker)
        self.token = token
        self.budget = budget or RetryBudget()
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=3.0))
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen on a free loopback port; returns the playlist URL to hand the player."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/index.m3u8"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._own_http:
            await self._http.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > _MAX_HEAD:
                    break
                method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                status, content_type, body = await self.fetch(target)
                writer.write(
                    f"HTTP/1.1 {status} {_phrase(status)}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                )
                if method != "HEAD":
                    writer.write(body)
                await writer.drain()
        writer.close()

    async def fetch(self, target: str) -> tuple[int, str, bytes]:
        """GET `target` (e.g. "/index.m3u8") upstream with the newest token: status,
        content type, body. Retried while the upstream is gone, within RETRY_FOR_S and
        the budget."""
        deadline = time.monotonic() + RETRY_FOR_S
        self.budget.request()
        attempt = 0
        while True:
            url = f"{self._base}/{self.token}{target}"
            hinted = None
            try:
                answer = await self._http.get(url)
                content_type = answer.headers.get("content-type", "application/octet-stream")
                result = answer.status_code, content_type, answer.content
                hinted = retry_after_s(answer.headers)
            except httpx.TransportError:
                result = 502, "text/plain", b"the media server cannot be reached"
            if result[0] not in _RETRY_STATUS:
                return result
            wait = retry_delay(attempt, base=RETRY_BASE_S, cap=RETRY_CAP_S, retry_after=hinted)
            if not self.budget.try_retry():
                # Out of retries: the player keeps waiting (an error would end its session),
                # asked again no sooner than a player polls anyway.
                wait = max(wait, RETRY_CAP_S)
            if time.monotonic() + wait > deadline:
                return result
            attempt += 1
            await asyncio.sleep(wait)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
