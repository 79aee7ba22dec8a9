"""The caches of Yilian: answers that expire (tokens, grants) and byte-bounded LRU (tiles)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Answers kept for ``ttl`` seconds (or less, per entry), at most ``size`` of them.

    For facts that are checked on every request and change rarely: who a token belongs to,
    whether a user may read a study. When full, it is emptied (cheaper than tracking use, and a
    busy server refills it within seconds). Event-loop only: no lock.
    """

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The value, unless absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds (capped at the cache's own ``ttl``)."""
        if len(self._entries) >= self.size:
            self._entries.clear()
        life = self.ttl if ttl is None else min(ttl, self.ttl)
        self._entries[key] = (time.monotonic() + life, value)

    def discard(self, key: K) -> None:
        """Forget one entry."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class LRUCache(Generic[V]):
    """Least-recently-used cache bounded by total size; safe across worker threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, n) = self._items.popitem(last=False)
                self._size -= n

    def discard(self, key: Hashable) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]

    def __len__(self) -> int:
        return len(self._items)
