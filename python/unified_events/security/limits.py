"""Per-client limits: connections per address, publish rate per token and per address (0 = none).

Rate limits are token buckets in the Rust core (`_core.TokenBucket`). Bucket tables are bounded:
when one grows past `_MAX_KEYS`, buckets that have refilled completely (idle clients) are dropped,
which forgets nothing a full bucket would have remembered.
"""

from __future__ import annotations

import time

from .. import _core

_MAX_KEYS = 10_000


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class BucketTable:
    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._buckets: dict[str, _core.TokenBucket] = {}

    def allow(self, key: str, cost: float = 1.0) -> bool:
        if self.rate <= 0:
            return True  # no limit configured
        now = _now_ms()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_KEYS:
                self._prune(now)
            bucket = self._buckets[key] = _core.TokenBucket(self.rate, self.burst, now)
        return bucket.try_take(now, cost)

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens(now) >= self.burst]
        for key in full:
            del self._buckets[key]


class PublishLimiter:
    """A publish passes when both the token's and the address's buckets have room."""

    def __init__(self, limits: object) -> None:
        self.per_token = BucketTable(limits.publish_per_second_per_token,  # type: ignore[attr-defined]
                                     limits.publish_burst_per_token)  # type: ignore[attr-defined]
        self.per_address = BucketTable(limits.publish_per_second_per_address,  # type: ignore[attr-defined]
                                       limits.publish_burst_per_address)  # type: ignore[attr-defined]

    def allow(self, token_key: str | None, address: str, count: int = 1) -> str | None:
        """None when allowed, else which limit refused ("token" or "address")."""
        if not self.per_address.allow(address, count):
            return "address"
        if token_key is not None and not self.per_token.allow(token_key, count):
            return "token"
        return None


class AddressConnections:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def try_add(self, address: str) -> bool:
        count = self._counts.get(address, 0)
        if 0 < self.limit <= count:
            return False
        self._counts[address] = count + 1
        return True

    def remove(self, address: str) -> None:
        count = self._counts.get(address, 0) - 1
        if count > 0:
            self._counts[address] = count
        else:
            self._counts.pop(address, None)
