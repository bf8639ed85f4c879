"""Memories, per process, of answers that are a function of their key alone (a calendar minute's
market clock, a universe's efficient frontier): never stale, so kept without an age limit."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

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
