"""A log-bucketed latency histogram in the spirit of HdrHistogram: bounded relative error, O(1)
record, and mergeable, so each load-generator process keeps its own and the parent adds them up.

Values are integer microseconds. Values below 2**SUB_BITS are exact; above, each power of two is
split into 2**(SUB_BITS-1) equal buckets, so a bucket's width is under 1/64 of its value (< 1.6%
error with SUB_BITS = 7). Only non-empty buckets are stored, so a histogram is small to send
between processes and to write into the JSON report.
"""

from __future__ import annotations

from collections.abc import Iterable

SUB_BITS = 7
_SUB = 1 << SUB_BITS          # 128 exact values at the bottom
_HALF = _SUB >> 1             # buckets per power of two above that


def bucket_of(value: int) -> int:
    if value < _SUB:
        return max(value, 0)
    shift = value.bit_length() - SUB_BITS
    return _SUB + (shift - 1) * _HALF + ((value >> shift) - _HALF)


def bucket_bounds(index: int) -> tuple[int, int]:
    """[low, high] of the values that land in bucket `index`."""
    if index < _SUB:
        return index, index
    shift = (index - _SUB) // _HALF + 1
    mantissa = (index - _SUB) % _HALF + _HALF
    low = mantissa << shift
    return low, low + (1 << shift) - 1


class Histogram:
    __slots__ = ("counts", "total", "max", "min")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.max = 0
        self.min = 0

    def record(self, value: int) -> None:
        index = bucket_of(value)
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        if value > self.max:
            self.max = value
        if self.total == 0 or value < self.min:
            self.min = value
        self.total += 1

    def merge(self, other: Histogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        if other.total:
            self.min = other.min if self.total == 0 else min(self.min, other.min)
            self.max = max(self.max, other.max)
        self.total += other.total

    def percentile(self, p: float) -> int:
        """The value at or below which `p` percent of recordings fall (bucket upper bound, capped
        at the true max so p100 is exact)."""
        if self.total == 0:
            return 0
        rank = max(1, int(round(self.total * p / 100.0 + 0.4999999)))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(bucket_bounds(index)[1], self.max)
        return self.max

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total, "min": self.min, "max": self.max,
                "buckets": [[i, c] for i, c in sorted(self.counts.items())]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Histogram:
        hist = cls()
        buckets = data.get("buckets") or []
        assert isinstance(buckets, list)
        hist.counts = {int(i): int(c) for i, c in buckets}
        hist.total = int(data.get("total", 0))  # type: ignore[call-overload]
        hist.min = int(data.get("min", 0))  # type: ignore[call-overload]
        hist.max = int(data.get("max", 0))  # type: ignore[call-overload]
        return hist

    @classmethod
    def merged(cls, parts: Iterable[Histogram]) -> Histogram:
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def summary_ms(self) -> dict[str, float | int]:
        """The percentiles the report prints, in milliseconds."""
        out: dict[str, float | int] = {"count": self.total}
        for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("p99_9", 99.9)):
            out[name] = round(self.percentile(p) / 1000, 3)
        out["max"] = round(self.max / 1000, 3)
        return out
