"""A job done in rounds by one worker at a time (the reconciler, continuity): a round that
fails is logged and the next one tries again; the job never dies of one bad round."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["in_rounds"]

log = logging.getLogger(__name__)


async def in_rounds(
    tick: Callable[[], Awaitable[object]],
    interval: float,
    forget: Callable[[], None],
    what: str,
) -> None:
    """Call `tick` every `interval` seconds, for ever. After a failed round `forget` drops
    what the job believed (its lease may be gone)."""
    while True:
        try:
            await tick()
        except Exception:
            forget()
            log.exception("%s failed; trying again", what)
        await asyncio.sleep(interval)
