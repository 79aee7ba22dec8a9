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
