"""A small HTTP client for the Majlis API with jittered exponential backoff on 429/503."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

__all__ = ["ApiClient", "ApiError", "jittered_wait"]


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class ApiClient:
    def __init__(self, server: str, *, retries: int = 8) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.server, timeout=30)
        self._retries = retries
        self.token: str | None = None
        self.member: str | None = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """JSON in, JSON out; retries overload answers with backoff (a retry budget)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        for attempt in range(self._retries + 1):
            response = await self._http.request(method, path, json=body, headers=headers)
            if response.status_code not in (429, 503) or attempt == self._retries:
                break
            await asyncio.sleep(_backoff(response, attempt))
        if response.status_code >= 400:
            raise ApiError(response.status_code, _reason(response))
        return response.json() if response.content else None

    async def call_full(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return await self._http.request(method, path, json=body, headers=headers)

    async def login(self, username: str, password: str) -> None:
        session = await self.call(
            "POST", "/api/v1/auth/login", {"username": username, "password": password}
        )
        self.token, self.member = session["token"], session["member"]

    async def anonymous(self) -> None:
        session = await self.call("POST", "/api/v1/auth/anonymous")
        self.token, self.member = session["token"], session["member"]

    async def join(self, space_id: str) -> dict[str, Any]:
        """Join, waiting in the waiting room as long as it takes."""
        body: dict[str, Any] = {}
        while True:
            response = await self.call_full("POST", f"/api/v1/spaces/{space_id}/join", body)
            if response.status_code == 200:
                return dict(response.json())
            if response.status_code == 202:
                queued = response.json()
                body = {"ticket": queued["ticket"]}
                await asyncio.sleep(queued["retry_after_ms"] / 1000)
                continue
            if response.status_code in (429, 503):
                await asyncio.sleep(_backoff(response, 0))
                continue
            raise ApiError(response.status_code, _reason(response))


def jittered_wait(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry `attempt` (0, 1, …): base doubling up to cap, then
    between half and all of it, so that a crowd of clients does not come back in step."""
    return min(cap, base * 2.0**attempt) * random.uniform(0.5, 1.0)


def _backoff(response: httpx.Response, attempt: int) -> float:
    hinted = response.headers.get("retry-after-ms")
    base = int(hinted) / 1000 if hinted and hinted.isdigit() else 0.25 * 2**attempt
    return min(30.0, base) * random.uniform(1.0, 1.5)


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", response.text))
    except ValueError:
        return response.text[:200]
