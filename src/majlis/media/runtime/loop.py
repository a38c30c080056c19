"""The media plane's thread and its asyncio loop.

The mixer's 20 ms clock must never wait behind HTTP work, so the media plane runs on a
loop of its own in a thread of its own. Every aiortc peer, track and mixer clock of a node
lives on that one loop, so none of them ever crosses a thread; other threads and loops
hand it work through MediaLoop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["MediaLoop"]

T = TypeVar("T")
P = ParamSpec("P")


class MediaLoop:
    """A thread owning an asyncio loop for the media plane.

    start()/stop() from any thread but the loop's own; call()/run()/submit() hand work to it.
    """

    def __init__(self, name: str = "majlis-media") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the media loop is not started")
        return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the media loop is already started")
        loop = _new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name=self.name, daemon=True
        )
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, cancel what still runs on it and join the thread."""
        if self.in_loop():
            raise RuntimeError("the media loop cannot stop itself from inside")
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the media loop from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the media loop from a coroutine on any loop (the HTTP loop)."""
        if self.in_loop():
            return await coro
        return await asyncio.wrap_future(self.call(coro))

    def submit(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Run a plain function on the media loop; its result comes back as a future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def runner() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(runner)
        return future

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            MediaLoop._shutdown(loop)

    @staticmethod
    def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists: for 13 speakers the loop's own work (datagrams, callbacks,
    task switches for ~1,300 packets a second) is a tenth of the node's CPU, and uvloop
    does it in C (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
