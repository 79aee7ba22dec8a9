"""The chat rate limit: a token bucket per user."""

from __future__ import annotations

import time


class ChatLimiter:
    """``burst`` lines at once, then ``per_second``; one bucket per user (in this process,
    shared by all of the user's sockets). Buckets that have filled up again are dropped by
    ``prune``, so idle users cost nothing."""

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst, self.per_second = float(burst), per_second
        self._buckets: dict[int | str, tuple[float, float]] = {}  # user -> (tokens, at)

    def take(self, user_id: int | str) -> float:
        """Spend one line; 0 when allowed, else the seconds until one is."""
        now = time.monotonic()
        tokens, at = self._buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        if tokens < 1.0:
            self._buckets[user_id] = (tokens, now)
            return (1.0 - tokens) / self.per_second
        self._buckets[user_id] = (tokens - 1.0, now)
        return 0.0

    def prune(self) -> None:
        """Forget the buckets that are full again."""
        now = time.monotonic()
        full = [u for u, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.per_second >= self.burst]
        for user_id in full:
            del self._buckets[user_id]

    def __len__(self) -> int:
        return len(self._buckets)


class RelayLimiter:
    """Per-user buckets on the events that reach the broadcast relay: each ``subscribe``
    builds a peer connection (a small burst, then one a second); signals to ``sfu`` and
    ``layer`` moves are cheap but come in bursts of ICE candidates (a generous bucket)."""

    def __init__(self, subscribe: tuple[int, float] = (5, 1.0),
                 signals: tuple[int, float] = (40, 10.0)) -> None:
        self.subscribe = ChatLimiter(*subscribe)
        self.signals = ChatLimiter(*signals)

    def prune(self) -> None:
        self.subscribe.prune()
        self.signals.prune()
