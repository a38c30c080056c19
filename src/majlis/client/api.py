"""A small HTTP client for the Majlis API. Overload answers (429/503) are retried after the
server's Retry-After, else full-jitter exponential backoff, inside the client's retry budget
(client/retry.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from majlis.client.retry import RetryBudget, retry_after_s, retry_delay

__all__ = ["ApiClient", "ApiError", "jittered_wait"]


class ApiError(Exception):
    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.retry_after = retry_after  # seconds, when the server said when to come back


RETRY_BASE_S = 0.25
RETRY_CAP_S = 30.0
_OVERLOADED = (429, 503)


class ApiClient:
    """`budget`: the client's retry budget, shared with its other retry paths (one is made
    when none is given); `http`: a client of one's own (e.g. with event hooks), else one
    is made and closed with this one."""

    def __init__(
        self,
        server: str,
        *,
        retries: int = 8,
        budget: RetryBudget | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(base_url=self.server, timeout=30)
        self._retries = retries
        self.budget = budget or RetryBudget()
        self.token: str | None = None
        self.member: str | None = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_http:
            await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        retries: int | None = None,
        first: bool = True,
    ) -> Any:
        """JSON in, JSON out; overload answers are retried (at most `retries` times, and
        only while the budget allows), then raised as ApiError. `first=False`: this call
        is itself a retry the caller took from the budget (not counted as a request)."""
        limit = self._retries if retries is None else retries
        attempt = 0
        if first:
            response = await self.call_full(method, path, body)
        else:
            response = await self._send(method, path, body)
        while response.status_code in _OVERLOADED and attempt < limit and self.budget.try_retry():
            await asyncio.sleep(
                retry_delay(
                    attempt,
                    base=RETRY_BASE_S,
                    cap=RETRY_CAP_S,
                    retry_after=retry_after_s(response.headers),
                )
            )
            attempt += 1
            response = await self._send(method, path, body)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _reason(response), retry_after_s(response.headers))
        return response.json() if response.content else None

    async def call_full(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One first attempt (counted in the budget), the answer as it is."""
        self.budget.request()
        return await self._send(method, path, body)

    async def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = path if path.startswith(("http://", "https://")) else self.server + path
        return await self._http.request(method, url, json=body, headers=headers)

    async def login(self, username: str, password: str) -> None:
        session = await self.call(
            "POST", "/api/v1/auth/login", {"username": username, "password": password}
        )
        self.token, self.member = session["token"], session["member"]

    async def anonymous(self) -> None:
        session = await self.call("POST", "/api/v1/auth/anonymous")
        self.token, self.member = session["token"], session["member"]

    async def join(self, space_id: str) -> dict[str, Any]:
        """Join, waiting in the waiting room as long as it takes.

        A ticket's poll is the server's schedule, not a retry. An overload answer or a
        server that cannot be reached is retried after Retry-After or a jittered backoff,
        and when the budget holds no retry, only once it does again: a crowd of joiners
        whose server is down keeps to ~10 % over what it sent, and never gives up."""
        body: dict[str, Any] = {}
        path = f"/api/v1/spaces/{space_id}/join"
        attempt = 0
        while True:
            response: httpx.Response | None
            try:
                if attempt == 0:
                    response = await self.call_full("POST", path, body)
                else:
                    response = await self._send("POST", path, body)
            except httpx.TransportError:
                response = None  # the server is gone for now: retried like a 503
            if response is not None and response.status_code == 200:
                return dict(response.json())
            if response is not None and response.status_code == 202:
                queued = response.json()
                body = {"ticket": queued["ticket"]}
                await asyncio.sleep(queued["retry_after_ms"] / 1000)
                attempt = 0
                continue
            if response is not None and response.status_code not in _OVERLOADED:
                raise ApiError(
                    response.status_code, _reason(response), retry_after_s(response.headers)
                )
            hinted = None if response is None else retry_after_s(response.headers)
            wait = retry_delay(attempt, base=RETRY_BASE_S, cap=RETRY_CAP_S, retry_after=hinted)
            await asyncio.sleep(wait)
            await self._retry_allowed()
            attempt += 1

    async def _retry_allowed(self) -> None:
        """Return once the budget has given a retry (at once if it holds one)."""
        for _ in range(1_000_000):
            if self.budget.try_retry():
                return
            await asyncio.sleep(max(0.05, self.budget.wait_s()))
        raise ApiError(0, "the retry budget never allowed a retry")  # pragma: no cover


def jittered_wait(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry `attempt` (0, 1, …): base doubling up to cap, then
    between half and all of it, so that a crowd of clients does not come back in step."""
    return min(cap, base * 2.0**attempt) * random.uniform(0.5, 1.0)


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", response.text))
    except ValueError:
        return response.text[:200]
