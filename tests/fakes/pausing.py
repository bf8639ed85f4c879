"""Broker adapters that hold one thread right after the broker accepted an order, its answer in
hand and not stored yet, as a process stopped by SIGSTOP would be (the execution fence's tests).

    with pausing.armed() as pause:      # settings.BROKER_ADAPTERS pointing at the classes below
        pause.thread, pause.symbol = executor_thread, "SPY"
        ... pause.paused.wait() ... pause.resume.set()
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from brokers.adapters.alpaca import AlpacaBroker
from brokers.adapters.ib import IBBroker
from brokers.base import OrderRequest


class Pause:
    """Where to hold: the thread, and the symbol of the order after whose acceptance it waits."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.symbol = ""
        self.paused = threading.Event()
        self.resume = threading.Event()

    def after_submit(self, request: OrderRequest) -> None:
        if threading.current_thread() is self.thread and request.symbol == self.symbol and not self.paused.is_set():
            self.paused.set()
            self.resume.wait(60)


_current = Pause()


@contextmanager
def armed() -> Iterator[Pause]:
    """A fresh `Pause` for the adapters below; released (resumed) at the end whatever happened."""
    global _current
    _current = Pause()
    try:
        yield _current
    finally:
        _current.resume.set()


class PausingAlpacaBroker(AlpacaBroker):
    def submit_order(self, request):
        answer = super().submit_order(request)
        _current.after_submit(request)
        return answer


class PausingIBBroker(IBBroker):
    def submit_order(self, request):
        answer = super().submit_order(request)
        _current.after_submit(request)
        return answer
