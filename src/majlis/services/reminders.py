"""Reminders delivered: when a scheduled space starts (or is missed), everyone who asked
to be reminded hears of it once, in the app, by email and through the operator's webhook.

The in-app notifications are written in the transaction that claims the reminders (see
store/notifications.py), so with any number of control-plane workers each subscriber is
claimed, and told, by one of them. Email and the webhook go out after the start, in
tasks of their own: the host's request never waits for, or fails with, a mail server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from majlis.clock import Clock
from majlis.services.mail import Mailer, reminder_email
from majlis.services.retrying import Backoff, retried
from majlis.services.webhook import Webhook
from majlis.store.base import Store
from majlis.types import Space, Subscriber

__all__ = ["Reminders"]

log = logging.getLogger(__name__)


class Reminders:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        public_url: str,
        backoff: Backoff,
        *,
        mailer: Mailer | None = None,
        webhook: Webhook | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._public_url = public_url
        self._backoff = backoff
        self._mailer = mailer
        self._webhook = webhook
        self._sending: set[asyncio.Task[object]] = set()  # held: the loop keeps weak refs

    async def started(self, space: Space, *, webhook: bool = True) -> list[Subscriber]:
        """Tell the space's subscribers it has started; answer whom this worker told.
        webhook=False: a catch-up of reminders left over (the operator heard already)."""
        subscribers = await self._store.deliver_reminders(
            space.id, "space_started", space.title, self._clock.now()
        )
        if self._mailer is not None:
            for subscriber in subscribers:
                if subscriber.email:
                    self._spawn(self._mail(space, subscriber.email))
        if self._webhook is not None and webhook:
            # Called once per space: only the start whose compare-and-set made the space
            # live gets here, so the operator hears of it once, subscribers or none.
            self._spawn(self._post(space, len(subscribers)))
        return subscribers

    async def missed(self, space: Space) -> list[Subscriber]:
        """Tell the subscribers, in the app, that the space did not happen."""
        return await self._store.deliver_reminders(
            space.id, "space_missed", space.title, self._clock.now()
        )

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests; shutdown)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.create_task(_logged(work))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def link(self, space: Space) -> str:
        return f"{self._public_url}/spaces/{space.id}"

    async def _mail(self, space: Space, to: str) -> None:
        mailer = self._mailer
        assert mailer is not None
        message = reminder_email(mailer.sender, to, space, self.link(space))
        await retried(
            lambda: mailer.send(message), self._backoff, f"reminder email for space {space.id}"
        )

    async def _post(self, space: Space, subscribers: int) -> None:
        webhook = self._webhook
        assert webhook is not None
        payload: dict[str, object] = {
            "event": "space_started",
            "space": {
                "id": space.id,
                "title": space.title,
                "host_id": space.host_id,
                "scheduled_for": space.scheduled_for,
                "started_at": space.started_at,
                "url": self.link(space),
            },
            "subscribers": subscribers,
        }
        await retried(
            lambda: webhook.post(payload, self._clock.now()),
            self._backoff,
            f"webhook for space {space.id}",
        )


async def _logged(work: Coroutine[Any, Any, object]) -> None:
    """A delivery task's own bug is logged, not left as an exception nobody retrieves."""
    try:
        await work
    except Exception:
        log.exception("a reminder delivery failed")
