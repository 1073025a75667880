"""The publishing schedule: which events fall due, on which topic, with which sequence number.

Paced: event i falls due at `start + i / rate`; every tick hands out the events that fell due
since the last one (at most `MAX_PER_TICK`; the rest stay due and show up as lag). Closed loop
(`rate = inf`): events are handed out while fewer than `budget` deliveries are outstanding.
Event i goes to topic i mod T, published by the publisher that owns that topic (topic mod P).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .hdr import Histogram

MAX_PER_TICK = 5000
_MAX_BACKLOG = 100_000  # events a publisher may hold unsent (an HTTP publisher while the server is down)


class Scheduler:
    def __init__(self, rate: float, per_topic: list[int], publishers: list[Any], budget: int,
                 delivered: Callable[[], int]) -> None:
        self.rate = rate
        self.closed_loop = math.isinf(rate)
        self.per_topic = per_topic            # subscribers following each topic (the fan-out)
        self.publishers = publishers
        self.budget = budget
        self.delivered = delivered
        self.published = [0] * len(per_topic)  # the last sequence number handed out, per topic
        self.scheduled = 0                     # events handed out
        self.expected = 0                      # deliveries those events should make
        self.lag = Histogram()                 # how late events were handed out, in µs
        self.start_mono = time.monotonic()
        self.start_ns = time.time_ns()

    def tick(self) -> None:
        if not self.publishers:
            return
        if self.closed_loop:
            due = MAX_PER_TICK if self.expected - self.delivered() < self.budget else 0
        else:
            # Event i falls due at i / rate: floor(elapsed * rate) + 1 events are due by now.
            due = int((time.monotonic() - self.start_mono) * self.rate) + 1 - self.scheduled
        if due > 0 and max(p.backlog() for p in self.publishers) <= _MAX_BACKLOG:
            self._hand_out(min(due, MAX_PER_TICK))

    def _hand_out(self, count: int) -> None:
        batches: list[list[tuple[int, int, int]]] = [[] for _ in self.publishers]
        n_pub, n_topics = len(self.publishers), len(self.per_topic)
        now_ns = time.time_ns()
        interval_ns = 0.0 if self.closed_loop else 1e9 / self.rate
        for _ in range(count):
            i = self.scheduled
            topic = i % n_topics
            self.published[topic] += 1
            due_ns = now_ns if self.closed_loop else self.start_ns + int(i * interval_ns)
            self.lag.record((now_ns - due_ns) // 1000)
            batches[topic % n_pub].append((topic, self.published[topic], due_ns))
            self.scheduled = i + 1
            self.expected += self.per_topic[topic]
            if self.closed_loop and self.expected - self.delivered() >= self.budget:
                break
        for publisher, batch in zip(self.publishers, batches):
            if batch:
                publisher.add(batch)
