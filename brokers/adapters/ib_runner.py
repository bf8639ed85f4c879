"""A dedicated thread running its own asyncio event loop, for the Interactive Brokers adapter.

ib_async (and ib_insync) keep a socket and live-updated objects on one asyncio event loop. That
loop must not be the caller's (a Django request thread or a django-q worker has none, or one
it uses for something else), so `LoopThread` owns a private loop in a daemon thread and the
adapter's synchronous methods hand coroutines to it and wait with a timeout.

Contract:

- `run` starts the thread on first use (constructing a `LoopThread` starts nothing), submits the
  coroutine made by ``make_coroutine`` to the loop and waits at most ``timeout_s`` seconds. On
  timeout the coroutine is cancelled and `LoopTimeout` is raised: the coroutine may have done
  part of its work (the caller decides what that means). Any exception the coroutine raises is
  re-raised in the caller's thread.
- `stop` cancels what is still running on the loop, closes the loop and joins the thread; the
  `LoopThread` cannot be used afterwards. It is idempotent.
- `run` from the loop's own thread would deadlock, so it raises `RuntimeError` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LoopTimeout(TimeoutError):
    """A coroutine run on the loop thread did not finish in time (it has been cancelled)."""


class LoopThread:
    """One daemon thread with its own event loop; see the module docstring."""

    def __init__(self, name: str):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._state_lock = threading.Lock()
        self._stopped = False

    @property
    def thread(self) -> threading.Thread | None:
        """The loop's thread (None before the first `run`)."""
        return self._thread

    @property
    def started(self) -> bool:
        return self._thread is not None

    def run(self, make_coroutine: Callable[[], Coroutine[Any, Any, T]], timeout_s: float) -> T:
        """Run ``make_coroutine()`` on the loop thread; wait at most ``timeout_s`` seconds.

        The coroutine is created on the loop thread (so that it and anything it builds belong to
        that loop). Raises `LoopTimeout` on timeout, `RuntimeError` after `stop` or when called
        from the loop thread itself.
        """
        loop = self._ensure_started()
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self.name}: run() called from the loop thread itself (would deadlock)")

        async def in_loop() -> T:
            return await make_coroutine()

        future = asyncio.run_coroutine_threadsafe(in_loop(), loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            # Cancelling reaches the coroutine at its next await; what it did before stays done.
            future.cancel()
            raise LoopTimeout(f"{self.name}: no result within {timeout_s:g} s") from None

    def stop(self, timeout_s: float) -> None:
        """Cancel pending work, stop and close the loop, join the thread (at most ``timeout_s``)."""
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        if thread.is_alive():
            # A daemon thread: it cannot keep the process alive, but say so (it means a callback
            # on the loop is blocking, which is a bug).
            logger.warning("%s: the IB loop thread did not stop within %g s", self.name, timeout_s)

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._state_lock:
            if self._stopped:
                raise RuntimeError(f"{self.name}: the loop thread has been stopped")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
                self._thread.start()
            loop = self._loop
        self._started.wait()
        return loop

    def _main(self) -> None:
        loop = self._loop
        assert loop is not None
        # ib_async/eventkit look the loop up with get_event_loop(): make this thread's loop ours.
        asyncio.set_event_loop(loop)
        self._started.set()
        try:
            loop.run_forever()
        finally:
            _shutdown(loop)


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every task still on ``loop``, let them unwind, then close it."""
    try:
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
