"""RemoteMedia: the MediaPlane of a control-plane worker in a cluster.

Commands go on the bus, where every node hears them and the one holding (or chosen for)
the space acts. Offers go over HTTP to the node that holds the space's lease, or, when
none does yet, to the node `choose_node` picks, which claims it; a node that lost the
race answers 409 `elsewhere` and the offer goes to the winner. While the holder drains,
offers go to the node taking over (`choose_node` among the others), which takes the space
on standby until the handover (media/runtime/membership.py). When this process runs a
node itself, offers for its spaces skip HTTP.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import Conflict, MajlisError, Overloaded
from majlis.plane import (
    NODE_KEY_HEADER,
    NODE_PREFIX,
    CaptionsSink,
    LevelsSink,
    MediaCommand,
    NodeInfo,
    NodeLoad,
    Resume,
    Room,
    Sample,
    choose_node,
    decode_error,
    encode_command,
    node_alive_channel,
    node_key,
    space_lease,
)
from majlis.types import MEDIA_CHANNEL

__all__ = ["LocalNode", "RemoteMedia"]

log = logging.getLogger(__name__)

RETRY_AFTER_MS = 1000
OFFER_TIMEOUT = 15.0  # ICE gathering on the node is part of answering


class LocalNode(Protocol):
    """A node in this same process (media.membership.Membership)."""

    @property
    def node_id(self) -> str: ...

    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str: ...


class RemoteMedia:
    # Nodes publish levels and caption lines on the bus themselves (membership.py).
    on_levels: LevelsSink | None = None
    on_captions: CaptionsSink | None = None

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        key: str,
        local: LocalNode | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._key = key
        self._local = local
        self._client = client or httpx.AsyncClient(timeout=OFFER_TIMEOUT)

    async def start(self, resume: Resume | None = None) -> None:
        """Nothing to start: the reconciler restarts spaces whose node is gone."""

    async def stop(self) -> None:
        await self._client.aclose()

    async def handle(self, command: MediaCommand) -> None:
        await self._bus.publish(MEDIA_CHANNEL, encode_command(command))

    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        node = await self.owner(space_id)
        if node is None or node.draining:
            node = choose_node(await self.nodes(), space_id) or node
        try:
            return await self._offer_at(_alive(node), space_id, user_id, sdp, muted, started_at)
        except Conflict as error:
            if error.code != "elsewhere":
                raise
            # Another node claimed the space between our look and this one's claim.
            node = await self.owner(space_id)
        except _Unreachable as gone:
            node = await self._take_over(space_id, gone.node)
        try:
            return await self._offer_at(_alive(node), space_id, user_id, sdp, muted, started_at)
        except Conflict as error:
            if error.code != "elsewhere":
                raise
            # Moved twice under our feet: a handover in progress. Never a 409 to the
            # speaker, whose clients take a 409 as final; a 503 says "again, soon".
            raise Overloaded("the space is moving to another media node", RETRY_AFTER_MS) from None
        except _Unreachable:
            raise Overloaded("the media node is unreachable; offer again", RETRY_AFTER_MS) from None

    async def _take_over(self, space_id: str, dead: NodeInfo) -> NodeInfo | None:
        """A speaker came back before the reconciler saw the node die. Its HTTP refused
        the offer; if it has also left the bus, it is dead on two counts: the space is
        placed again at once, by this offer, instead of a second later."""
        if await self._bus.subscribers(node_alive_channel(dead.node_id)) > 0:
            raise Overloaded("the media node is unreachable; offer again", RETRY_AFTER_MS)
        log.warning("media node %s is gone; space %s moves with this offer", dead.node_id, space_id)
        await self._bus.release_lease(space_lease(space_id), dead.node_id)
        await self._bus.delete_value(node_key(dead.node_id))
        others = [n for n in await self.nodes() if n.node_id != dead.node_id]
        return choose_node(others, space_id)

    async def owner(self, space_id: str) -> NodeInfo | None:
        """The node that holds the space's lease, if it is alive and announced."""
        owner = await self._bus.lease_owner(space_lease(space_id), self._clock.now())
        if owner is None:
            return None
        text = await self._bus.get_value(node_key(owner))
        return NodeInfo.from_json(text) if text is not None else None

    async def nodes(self) -> list[NodeInfo]:
        found = await self._bus.get_values(NODE_PREFIX)
        return [info for text in found.values() if (info := NodeInfo.from_json(text))]

    async def capacity(self) -> Room:
        """Live spaces the nodes announced now take in all: a draining node none, a node
        that is behind only those it runs."""
        nodes = await self.nodes()
        behind = any(n.behind and not n.draining for n in nodes)
        return Room(sum(n.room for n in nodes), behind)

    async def playout_delays(self, space_id: str) -> dict[str, float]:
        """Nodes hand spaces over among themselves (membership.py); never asked here."""
        return {}

    async def load(self) -> NodeLoad:
        """The cluster's spaces, and its worst node's lateness."""
        nodes = await self.nodes()
        return NodeLoad(sum(n.spaces for n in nodes), max((n.late_ms for n in nodes), default=0.0))

    async def metrics(self) -> list[Sample]:
        nodes = await self.nodes()
        return [
            ("majlis_cluster_nodes", {}, float(len(nodes))),
            ("majlis_cluster_nodes_behind", {}, float(sum(1 for n in nodes if n.behind))),
            ("majlis_cluster_spaces", {}, float(sum(n.spaces for n in nodes))),
        ]

    async def _offer_at(
        self, node: NodeInfo, space_id: str, user_id: str, sdp: str, muted: bool, started: float
    ) -> str:
        local = self._local
        if local is not None and node.node_id == local.node_id:
            return await local.offer(space_id, user_id, sdp, muted, started)
        body = {
            "space_id": space_id,
            "user_id": user_id,
            "sdp": sdp,
            "muted": muted,
            "started_at": started,
        }
        try:
            answer = await self._client.post(
                f"{node.url}/node/v1/offer", json=body, headers={NODE_KEY_HEADER: self._key}
            )
            wire = answer.json()
        except httpx.TransportError:
            log.warning("media node %s did not answer an offer", node.node_id)
            raise _Unreachable(node) from None
        except (httpx.HTTPError, ValueError):
            log.warning("media node %s answered an offer with nonsense", node.node_id)
            raise Overloaded("the media node failed; offer again", RETRY_AFTER_MS) from None
        if answer.status_code == 200 and isinstance(wire, dict) and "sdp" in wire:
            return str(wire["sdp"])
        error: MajlisError = decode_error(wire if isinstance(wire, dict) else {})
        raise error


class _Unreachable(Exception):
    def __init__(self, node: NodeInfo) -> None:
        super().__init__(node.node_id)
        self.node = node


def _alive(node: NodeInfo | None) -> NodeInfo:
    if node is None:
        raise Overloaded("no media node is available", RETRY_AFTER_MS)
    return node
