"""The compact signed-token format shared by the control plane and the edge.

`kind.field1.field2….expiry.mac`: fields joined by dots (so no field may contain one),
expiry in whole Unix seconds, mac = the first 20 bytes of HMAC-SHA256 over everything before
the last dot, base64url without padding. Each kind has its own key derived from the server's
secret, so an edge handed the key of playback tokens can check them but cannot mint
waiting-room tickets, let alone sessions.

Imports nothing of ours: the edge's configuration generator and `services/tokens.py` both
use it, and they must agree to the byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["MAC_BYTES", "NODE", "PLAYBACK", "compact_key", "compact_mac"]

MAC_BYTES = 20
PLAYBACK = "play"
NODE = "node"  # control-plane workers -> media nodes
_KEY_LABEL = b"majlis compact tokens:"


def compact_key(secret: bytes, kind: str) -> bytes:
    """The 32-byte key for compact tokens of one kind, derived from the server's secret."""
    return hmac.new(secret, _KEY_LABEL + kind.encode(), hashlib.sha256).digest()


def compact_mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
