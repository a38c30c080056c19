"""A bound on the requests one address has in progress at once, on one worker.

Rate limits count requests as they arrive; they do not see a client that opens a thousand
slow requests and keeps them open (a slow body, a blocking playlist reload that never
completes). Each of those holds memory and a place in the event loop's work. Past the
bound, the next request from that address gets 429 at once, before any of its work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.api.middleware import send_error
from majlis.errors import RateLimited

__all__ = ["RequestsPerAddress"]

RETRY_MS = 1000


class RequestsPerAddress:
    def __init__(
        self, app: ASGIApp, limit: int, exempt: Callable[[str], bool] = lambda path: False
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.in_progress: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if self.in_progress[address] >= self.limit:
            error = RateLimited(f"at most {self.limit} requests at once per address", RETRY_MS)
            await send_error(send, error)
            return
        self.in_progress[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress[address] -= 1
            if not self.in_progress[address]:
                del self.in_progress[address]
