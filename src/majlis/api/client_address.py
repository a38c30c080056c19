"""Which address a request really comes from, when proxies stand in front of the server.

Per-address limits (writes, concurrent requests, event sockets) key on the client's
address. Behind a TLS terminator or the edge, the peer of every connection is the proxy,
so every listener would share one budget. A proxy that the operator trusts names the
client in X-Forwarded-For; anyone else could write anything there, so the header is read
only from trusted peers, and from the right: each trusted proxy appends the address it
saw, so the first address from the right that is not a trusted proxy is the client. What
a client wrote further left is never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAddress", "TrustedProxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """Comma-separated addresses or networks ("127.0.0.0/8, 10.1.2.3"); ValueError
        names the first that does not parse."""
        networks = []
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return cls(networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address for a connection from `peer` with these X-Forwarded-For
        values (in the order they came)."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            if not _is_address(hop):
                break  # a malformed list: keep the last address that a proxy we trust gave
            if not self.trusts(hop):
                return hop
            peer = hop
        return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class ClientAddress:
    """Sets the scope's client to the address TrustedProxies finds, for everything after it."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self.proxies.networks:
            forwarded = [
                v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"
            ]
            if forwarded:
                address = self.proxies.client(client[0], forwarded)
                if address != client[0]:
                    scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)
