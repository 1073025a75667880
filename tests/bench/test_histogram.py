"""The HDR-style histogram: bounded relative error, exact small values, merging."""

from __future__ import annotations

import random

from unified_events.loadgen.hdr import Histogram, bucket_bounds, bucket_of


def test_every_value_falls_inside_its_bucket() -> None:
    for value in list(range(0, 5000)) + [2**k + d for k in range(12, 40) for d in (-1, 0, 1)]:
        low, high = bucket_bounds(bucket_of(value))
        assert low <= value <= high
        assert high - low <= max(0, value) / 64 + 1  # < 1.6% relative width


def test_percentiles_match_sorted_samples_within_the_bucket_error() -> None:
    rng = random.Random(7)
    samples = [int(rng.lognormvariate(8, 1.5)) for _ in range(20_000)]
    hist = Histogram()
    for value in samples:
        hist.record(value)
    ordered = sorted(samples)
    for p in (50, 95, 99, 99.9):
        exact = ordered[max(0, int(round(len(ordered) * p / 100 + 0.4999999)) - 1)]
        assert abs(hist.percentile(p) - exact) <= exact / 64 + 1, p
    assert hist.percentile(100) == max(samples)
    assert hist.total == len(samples) and hist.min == min(samples)


def test_merged_parts_equal_one_histogram_of_everything() -> None:
    whole, parts = Histogram(), [Histogram() for _ in range(3)]
    for i in range(3000):
        value = (i * 7919) % 100_000
        whole.record(value)
        parts[i % 3].record(value)
    merged = Histogram.merged(Histogram.from_dict(p.to_dict()) for p in parts)
    assert merged.to_dict() == whole.to_dict()
    assert merged.summary_ms() == whole.summary_ms()


def test_an_empty_histogram_reports_zeros() -> None:
    assert Histogram().summary_ms() == {"count": 0, "p50": 0, "p95": 0, "p99": 0, "p99_9": 0, "max": 0}
