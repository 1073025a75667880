"""Python-level contract tests of `unified_events._core`, with Hypothesis against tiny reference models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unified_events import _core


# ------------------------------------------------------------------ topic validation (original §3.2, §11 B)

@pytest.mark.parametrize("topic", ["orders", "orders.created", "user-events", "topic_123", "orders.*",
                                   "tenant-123.orders.created_v2", "a", "*", "**", "a.b.**", "orders.>", "_errors",
                                   "a" * 256, ".".join("a" * 10)])
def test_valid_topics(topic):
    assert _core.check_topic(topic) is None


@pytest.mark.parametrize("topic,code,text", [
    ("", "EMPTY_TOPIC", "empty"), ("   ", "EMPTY_TOPIC", None), ("\t\t", "EMPTY_TOPIC", None),
    ("a" * 257, "TOPIC_TOO_LONG", "256"),
    ("..", "PATH_TRAVERSAL", "path traversal"), ("../secret", "PATH_TRAVERSAL", "path traversal"),
    ("../../etc/passwd", "PATH_TRAVERSAL", None), ("orders/../admin", "PATH_TRAVERSAL", None),
    ("..\\secret", "PATH_TRAVERSAL", None),
    ("orders created", "INVALID_CHARACTER", "character"), ("orders\ncreated", "INVALID_CHARACTER", None),
    ("orders\x00", "INVALID_CHARACTER", None), ("orders;rm -rf", "INVALID_CHARACTER", None),
    ("orders`whoami`", "INVALID_CHARACTER", None), ("orders|cat", "INVALID_CHARACTER", None),
    ("orders&x", "INVALID_CHARACTER", None), ("orders<script>", "INVALID_CHARACTER", None),
    ("orders'q", "INVALID_CHARACTER", None), ('orders"q', "INVALID_CHARACTER", None),
    ("orders/sub", "INVALID_CHARACTER", None), ("orders\\sub", "INVALID_CHARACTER", None),
    ("orders$PATH", "INVALID_CHARACTER", None),
    (".orders", "INVALID_DOT_POSITION", None), ("a..b", "CONSECUTIVE_DOTS", None),
    (".".join("a" * 11), "MAX_DEPTH_EXCEEDED", None),
    ("__x", "RESERVED_PREFIX", None), ("_system.x", "RESERVED_PREFIX", None), ("internal.x", "RESERVED_PREFIX", None),
    ("*.created", "INVALID_WILDCARD", None), ("orders*", "INVALID_WILDCARD", None),
    ("orders.*.x", "INVALID_WILDCARD", None), ("orders.***", "INVALID_WILDCARD", None),
])
def test_invalid_topics(topic, code, text):
    problem = _core.check_topic(topic)
    assert problem is not None and problem[0] == code, problem
    if text:
        assert text in problem[1].lower()


# ------------------------------------------------------------------ the matcher vs a reference model

def reference_match(pattern: str, topic: str) -> bool:
    """original-system.md §3.3 canonical rules plus the final `>`."""
    if pattern == topic or pattern in ("*", "**", ">"):
        return True
    p, t = pattern.split("."), topic.split(".")
    if p[-1] == "*" and len(p) >= 2:
        return len(t) == len(p) and t[:-1] == p[:-1]
    if p[-1] == "**" and len(p) >= 2:
        return t[: len(p) - 1] == p[:-1]
    if p[-1] == ">" and len(p) >= 2:
        return len(t) >= len(p) and t[: len(p) - 1] == p[:-1]
    return False


segments = st.sampled_from(["a", "b", "orders", "x1"])
topics = st.lists(segments, min_size=1, max_size=5).map(".".join)
patterns = st.one_of(
    topics,
    st.tuples(st.lists(segments, min_size=0, max_size=4), st.sampled_from(["*", "**", ">"])).map(
        lambda t: ".".join([*t[0], t[1]])),
)


@settings(max_examples=500, deadline=None)
@given(patterns, topics)
def test_matcher_agrees_with_reference(pattern, topic):
    assert _core.topic_matches(pattern, topic) == reference_match(pattern, topic)


@settings(max_examples=200, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=30), topics)
def test_subscription_index_agrees_with_linear_scan(subs, topic):
    hub = _core.Hub(1e9, 1e9, 1 << 30, 1 << 20, 10_000)
    for conn, pattern in enumerate(subs, start=1):
        hub.add_connection(conn, 0.0)
        hub.subscribe(conn, pattern)
    expected = sorted(conn for conn, pattern in enumerate(subs, start=1) if reference_match(pattern, topic))
    assert sorted(hub.matching(topic)) == expected


# ------------------------------------------------------------------ token bucket vs a reference model

@settings(max_examples=300, deadline=None)
@given(st.floats(0.5, 1000), st.floats(1, 100),
       st.lists(st.tuples(st.floats(0, 500), st.floats(0, 5)), max_size=40))
def test_token_bucket_agrees_with_reference(rate, burst, steps):
    bucket = _core.TokenBucket(rate, burst, 0.0)
    tokens, now = burst, 0.0
    for advance, cost in steps:
        now += advance
        tokens = min(burst, tokens + advance / 1000 * rate)
        expected = cost <= 0 or tokens + 1e-9 >= cost
        if expected and cost > 0:
            tokens -= cost
        assert bucket.try_take(now, cost) == expected
        assert abs(bucket.tokens(now) - tokens) < 1e-6 * max(1, burst)


def test_token_bucket_worked_example():
    bucket = _core.TokenBucket(10, 20, 0.0)
    assert sum(bucket.try_take(0.0) for _ in range(30)) == 20
    assert sum(bucket.try_take(1000.0) for _ in range(20)) == 10


# ------------------------------------------------------------------ dedup, frames, hot tier

def test_dedup_window_from_first_sight_and_cap():
    cache = _core.DedupCache(1000, 3)
    assert cache.check_and_insert("t", "a", 0) is False
    assert cache.check_and_insert("t", "a", 1000) is True  # still a duplicate at exactly the window
    assert cache.check_and_insert("t", "a", 1001) is False  # window counts from first sight
    assert cache.check_and_insert("u", "a", 1001) is False  # another topic, another event
    for event_id in "bcd":
        cache.check_and_insert("t", event_id, 1002)
    assert len(cache) == 3 and cache.evictions >= 2
    assert cache.duplicates == 1


def test_frames_round_trip():
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 70000]
    data = b"".join(_core.encode_text_frame(p) for p in payloads)
    assert _core.split_frames(data) == payloads
    assert _core.encode_text_frame(b"hi") == b"\x81\x02hi"


def test_hot_tier_lookups_replay_and_retention():
    hot = _core.HotTier(60_000, 1 << 20)
    for i in range(5):
        hot.insert(f"e{i}", "orders.created" if i % 2 else "payments", "trace", "ns", 1000 + i, "tr" if i < 3 else None,
                   None, None, f"F{i}".encode(), f'{{"id":"e{i}"}}'.encode())
    assert hot.find("trace_id", "tr") == [b'{"id":"e0"}', b'{"id":"e1"}', b'{"id":"e2"}']
    assert hot.replay_after_id("e1", ["orders.*"]) == [b"F3"]
    assert hot.replay_after_id("e1", []) == [b"F2", b"F3", b"F4"]
    assert hot.replay_after_id("missing", []) is None
    assert hot.replay_after_time(1002, []) == [b"F3", b"F4"]
    assert hot.query({"event_type": "trace"}, None, 2) == [b'{"id":"e4"}', b'{"id":"e3"}']
    assert hot.evict_expired(1002 + 60_000) == 2 and len(hot) == 3
    with pytest.raises(ValueError):
        hot.find("nope", "x")


def test_hot_tier_byte_budget_evicts_oldest():
    hot = _core.HotTier(60_000, 10_000)
    for i in range(100):
        hot.insert(f"e{i}", "t", "log", "ns", i, None, None, None, b"f" * 200, b"r" * 200)
    assert 0 < len(hot) < 100 and hot.bytes_used <= 10_000
    assert hot.find("id", "e99") and not hot.find("id", "e0")


def test_hub_queues_once_per_connection_and_drains_one_buffer_each():
    hub = _core.Hub(1000, 1000, 1 << 20, 100, 1000)
    for conn in (1, 2):
        hub.add_connection(conn, 0.0)
    hub.subscribe(1, "a.*")
    hub.subscribe(1, "a.b")
    hub.subscribe(2, "a.**")
    assert hub.publish("a.b", b"one", 0.0) == 2
    assert hub.publish("a.b", b"two", 0.0) == 2
    drained = dict(hub.drain(10))
    expected = _core.encode_text_frame(b"one") + _core.encode_text_frame(b"two")
    assert drained == {1: expected, 2: expected}
    assert not hub.has_pending()
    assert hub.stats()["delivered"] == 4
