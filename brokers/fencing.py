"""Writes allowed only while the writer still holds its claim on the work (an execution's lease).

An executor that lost its lease (paused, partitioned, slower than the lease) must neither send
nor store anything: another executor has taken the run over. Every order write therefore runs in
`Fence.atomic`, a transaction whose first statement re-checks and renews the claim (and locks its
row, so a takeover waits for the transaction), and every broker call goes through `FencedBroker`,
which renews the claim right before the call. Operator actions that hold no lease (the kill
switch) write through `UNFENCED`; the order rows' versions keep their writes from being lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import wraps
from typing import Any, Protocol

from django.db import transaction

from brokers.base import Broker


class LeaseLost(Exception):
    """The writer no longer holds its claim: nothing of the write was stored, nothing was sent."""


class Fence(Protocol):
    def atomic(self) -> AbstractContextManager[None]:
        """A transaction that first re-checks and renews the claim (`LeaseLost` when it is gone)."""
        ...

    def renew(self) -> None:
        """Re-check and renew the claim now (`LeaseLost` when it is gone)."""
        ...


class _Unfenced:
    """For writers that hold no claim: a plain transaction."""

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with transaction.atomic():
            yield

    def renew(self) -> None:
        return None


UNFENCED: Fence = _Unfenced()

#: Attributes of a broker that send it nothing (a reserved id is only a number until an order carries it).
_LOCAL = frozenset(
    {"close", "config", "kind", "settlement_delay_s", "max_call_s", "follows_exchange_hours", "reserve_submission_id"}
)


class FencedBroker:
    """``broker`` whose every call first renews ``fence`` (`LeaseLost` instead of the call)."""

    def __init__(self, broker: Broker, fence: Fence):
        self._broker = broker
        self.fence = fence

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._broker, name)
        if name.startswith("_") or name in _LOCAL or not callable(attribute):
            return attribute
        return self._renewing(attribute)

    def _renewing(self, call: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(call)
        def renewed_then_called(*args: Any, **kwargs: Any) -> Any:
            self.fence.renew()
            return call(*args, **kwargs)

        return renewed_then_called

    def __enter__(self) -> FencedBroker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._broker.close()
