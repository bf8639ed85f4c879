"""A short-lived memory, per process, of reads the daily run repeats for every portfolio.

Ten thousand portfolios over a few dozen universes read the same price windows and instrument
rows again and again. Stored bars are never changed once written (a fetch only adds days), so a
window read a moment ago is the window now, unless a fetch has since added a bar inside it;
entries therefore live `RECENT_SECONDS` and callers keep only complete answers (a window with
every symbol's close on its last day).

Only outside a transaction: there a read sees committed rows only. Inside one (a web request, an
API call, a test) a read may see the transaction's own uncommitted rows, which must not outlive
it, so the memory is bypassed.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")

RECENT_SECONDS = 60.0
_ALL: weakref.WeakSet[_Bounded] = weakref.WeakSet()


class _Bounded:
    """At most ``max_entries`` entries by key, the least recently used going first."""

    def __init__(self, *, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        _ALL.add(self)

    def _get(self, key: Hashable, default: object = None) -> object:
        entry = self._entries.get(key, default)
        if entry is not default:
            self._entries.move_to_end(key)
        return entry

    def _put(self, key: Hashable, entry: object) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class RecentReads(_Bounded):
    """Answers by key for ``seconds``, at most ``max_entries`` of them."""

    def __init__(self, *, seconds: float = RECENT_SECONDS, max_entries: int = 256):
        super().__init__(max_entries=max_entries)
        self.seconds = seconds

    def get_or_read(self, key: Hashable, read: Callable[[], T], *, keep: Callable[[T], bool] = lambda _: True) -> T:
        """The remembered answer for ``key`` if still fresh, else ``read()`` (remembered when ``keep``
        says so). Callers get the remembered object itself: they must not change it."""
        if connection.in_atomic_block:
            return read()
        now = time.monotonic()
        entry = self._get(key)
        if entry is not None and now - entry[0] < self.seconds:
            return entry[1]
        value = read()
        if keep(value):
            self._put(key, (now, value))
        else:
            self._entries.pop(key, None)
        return value


_MISSING = object()


class Memo(_Bounded):
    """Answers that are a function of their key alone (never stale, so kept without an age limit
    and inside transactions too), at most ``max_entries`` of them."""

    def __init__(self, *, max_entries: int = 256):
        super().__init__(max_entries=max_entries)

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            value = compute()
            self._put(key, value)
        return value  # type: ignore[return-value]


def forget_all() -> None:
    """Empty every memory of this process (tests start from nothing)."""
    for memory in list(_ALL):
        memory.clear()
