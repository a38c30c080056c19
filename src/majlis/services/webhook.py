"""The operator's webhook: a signed POST for each space that starts.

The signature is HMAC-SHA256 over `<timestamp>.<raw body>` with `webhook_secret`, sent as
`X-Majlis-Signature: sha256=<hex>` next to `X-Majlis-Timestamp` (Unix seconds). Signing the
timestamp with the body lets a receiver refuse a replayed request (one whose timestamp is
old) without keeping every body it has seen.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Webhook", "signature"]

SIGNATURE_HEADER = "X-Majlis-Signature"
TIMESTAMP_HEADER = "X-Majlis-Timestamp"
_TIMEOUT_S = 10.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    def __init__(self, url: str, secret: str) -> None:
        self._url = url
        self._secret = secret

    async def post(self, payload: dict[str, object], now: float) -> None:
        """One attempt, signed afresh (a retry carries its own timestamp); raises unless
        the receiver answers 2xx."""
        body = orjson.dumps(payload)
        stamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(self._secret, stamp, body),
        }
        async with httpx.AsyncClient(timeout=_TIMEOUT_S, follow_redirects=False) as client:
            answer = await client.post(self._url, content=body, headers=headers)
        answer.raise_for_status()
