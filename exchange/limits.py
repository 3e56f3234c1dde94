"""Per-agency rate limiting (token buckets) and the global in-flight cap.

The buckets live in process memory: with several relay processes each enforces
the limit separately (an agency may get up to N times the rate across N
processes). Time is the monotonic clock, independent of the injected wall clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["InFlight", "TokenBucketLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """``rate`` tokens per second, up to ``burst``, per key."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._monotonic = monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def take(self, key: str, cost: float = 1.0) -> float | None:
        """Spend ``cost`` tokens for ``key``: None if allowed, else seconds until it would be."""
        now = self._monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()  # crude bound on memory; keys are agencies, so rare
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return None
        return (cost - bucket.tokens) / self._rate

    @staticmethod
    def retry_after(seconds: float) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(seconds))


class InFlight:
    """Counts requests being handled, to refuse work beyond a cap (503, not a queue).

    Also per key (agency), so that one agency cannot take every slot with slow requests:
    beyond ``per_key`` at once it is refused (429) while the others are still served.
    """

    def __init__(self, limit: int, per_key: int | None = None) -> None:
        self.limit = limit
        self.current = 0
        self.per_key = per_key
        self._by_key: dict[str, int] = {}

    def enter(self) -> bool:
        """Count one more request; False (and not counted) when at the cap."""
        if self.current >= self.limit:
            return False
        self.current += 1
        return True

    def leave(self) -> None:
        """Count one request fewer."""
        self.current -= 1

    def enter_key(self, key: str) -> bool:
        """Count one more request of ``key``; False (and not counted) when it is at its cap."""
        count = self._by_key.get(key, 0)
        if self.per_key is not None and count >= self.per_key:
            return False
        self._by_key[key] = count + 1
        return True

    def leave_key(self, key: str) -> None:
        """Count one request of ``key`` fewer."""
        count = self._by_key.get(key, 0) - 1
        if count > 0:
            self._by_key[key] = count
        else:
            self._by_key.pop(key, None)
