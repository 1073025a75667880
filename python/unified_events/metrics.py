"""Counters, the fan-out latency window and histogram, and their JSON and Prometheus forms.

JSON keys and the four Prometheus series of the original are kept exactly (original-system.md
§2 E8, §9); everything else is added alongside.
"""

from __future__ import annotations

import bisect
import collections
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

# Fan-out latency histogram bucket bounds, in milliseconds.
LATENCY_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_LATENCY_WINDOW = 1000  # the original keeps the last 1000 fan-out durations
_RATE_WINDOW_S = 60.0


@dataclass
class Metrics:
    total_connections: int = 0
    messages_sent: int = 0  # once per fanned-out event, as in the original
    error_count: int = 0
    parse_errors: int = 0
    events_accepted: int = 0
    dedup_hits: int = 0
    slow_consumer_closes: int = 0
    # Requests, connections and frames refused by security/ (auth, limits), by reason.
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    started_at: float = field(default_factory=time.time)
    last_event_at_ms: int | None = None
    _latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=_LATENCY_WINDOW))
    _bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    _latency_sum_ms: float = 0.0
    _latency_count: int = 0
    # (whole second, events fanned out in it): a 60 s sliding window at one entry per second.
    _per_second: collections.deque[list[int]] = field(default_factory=collections.deque)

    def record_sent(self, count: int = 1) -> None:
        self.messages_sent += count
        second = int(time.monotonic())
        if self._per_second and self._per_second[-1][0] == second:
            self._per_second[-1][1] += count
        else:
            self._per_second.append([second, count])
            self._trim_rate_window(second)

    def record_latency(self, ms: float) -> None:
        self._latencies.append(ms)
        self._bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_MS, ms)] += 1
        self._latency_sum_ms += ms
        self._latency_count += 1

    def messages_per_second(self) -> float:
        """Events fanned out over the last 60 s, per second (a real sliding rate)."""
        self._trim_rate_window(int(time.monotonic()))
        return sum(count for _, count in self._per_second) / _RATE_WINDOW_S

    def percentile(self, p: float) -> float:
        """`sorted[floor(n*p)]` over the last 1000 fan-out durations, 0 when none (original §9)."""
        if not self._latencies:
            return 0
        ordered = sorted(self._latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def _trim_rate_window(self, second: int) -> None:
        cutoff = second - _RATE_WINDOW_S
        while self._per_second and self._per_second[0][0] <= cutoff:
            self._per_second.popleft()

    def histogram(self) -> tuple[list[tuple[float, int]], float, int]:
        """Cumulative (upper bound, count) pairs, the sum and the count."""
        cumulative, running = [], 0
        for bound, count in zip(LATENCY_BUCKETS_MS, self._bucket_counts):
            running += count
            cumulative.append((bound, running))
        return cumulative, self._latency_sum_ms, self._latency_count


def process_usage() -> dict[str, float]:
    """CPU seconds and resident memory of this process (for load tests reading /metrics)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = 0
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        rss = usage.ru_maxrss * 1024
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "rss_bytes": rss}


_ARCHIVER_SERIES = (
    ("position", "eventstream_archiver_position", "gauge", "Last log position committed to Iceberg"),
    ("lag_events", "eventstream_archiver_lag_events", "gauge", "Log events not yet committed to Iceberg"),
    ("lag_seconds", "eventstream_archiver_lag_seconds", "gauge", "Age of the oldest event not yet committed"),
    ("last_commit_at_ms", "eventstream_archiver_last_commit_ms", "gauge", "Epoch ms of the last Iceberg commit"),
    ("rows_total", "eventstream_archiver_rows_total", "counter", "Events committed by the running archiver"),
    ("dead_letters_total", "eventstream_archiver_dead_letters_total", "counter", "Events sent to the dead-letter table"),
    ("errors_total", "eventstream_archiver_errors_total", "counter", "Archiver errors (failed commits, ...)"),
)


def prometheus_text(snapshot: dict[str, Any], metrics: Metrics) -> str:
    """The original four series first (same names, HELP and TYPE), then ours."""
    lines: list[str] = []

    def series(name: str, kind: str, help_text: str, value: Any, labels: str = "") -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{labels} {value}")

    series("eventstream_connections_active", "gauge", "Active WebSocket connections", snapshot["activeConnections"])
    series("eventstream_connections_total", "counter", "Total WebSocket connections", snapshot["totalConnections"])
    series("eventstream_messages_total", "counter", "Total messages sent", snapshot["messagesSent"])
    series("eventstream_errors_total", "counter", "Total errors", snapshot["errorCount"])
    series("eventstream_parse_errors_total", "counter", "WebSocket frames that were not valid JSON", snapshot["parseErrors"])
    series("eventstream_events_accepted_total", "counter", "Events accepted for fan-out", snapshot["eventsAccepted"])
    series("eventstream_deliveries_total", "counter", "Event frames queued to connections", snapshot["deliveries"])
    lines.append("# HELP eventstream_dropped_total Deliveries dropped, by reason")
    lines.append("# TYPE eventstream_dropped_total counter")
    for reason, count in snapshot["dropped"].items():
        lines.append(f'eventstream_dropped_total{{reason="{reason}"}} {count}')
    series("eventstream_dedup_hits_total", "counter", "Duplicate events dropped", snapshot["dedupHits"])
    series("eventstream_slow_consumer_closes_total", "counter", "Connections closed as slow consumers",
           snapshot["slowConsumerCloses"])
    lines.append("# HELP eventstream_refused_total Requests, connections and frames refused, by reason")
    lines.append("# TYPE eventstream_refused_total counter")
    for reason, count in sorted(snapshot.get("refused", {}).items()):
        lines.append(f'eventstream_refused_total{{reason="{reason}"}} {count}')
    series("eventstream_hot_events", "gauge", "Events in the hot tier", snapshot["hotTierRows"])
    series("eventstream_hot_bytes", "gauge", "Bytes held by the hot tier", snapshot["hotTierBytes"])
    series("eventstream_topics", "gauge", "Subscription keys with at least one subscriber", snapshot["topicCount"])
    series("eventstream_queued_bytes", "gauge", "Bytes queued for connections, not yet written", snapshot["queuedBytes"])
    series("process_cpu_seconds_total", "counter", "CPU time of the server process", snapshot["process"]["cpu_seconds"])
    series("process_resident_memory_bytes", "gauge", "Resident memory of the server process",
           snapshot["process"]["rss_bytes"])
    archiver = snapshot.get("archiver") or {}
    if archiver.get("enabled"):
        series("eventstream_archiver_up", "gauge", "1 when the archiver reported in the last 30 s",
               1 if archiver.get("running") else 0)
        for key, name, kind, help_text in _ARCHIVER_SERIES:
            if archiver.get(key) is not None:
                series(name, kind, help_text, archiver[key])
    durable = snapshot.get("durableLog")
    if durable:
        series("eventstream_log_last_position", "gauge", "Last position written to the durable log",
               durable["last_position"])
        series("eventstream_log_durable_position", "gauge", "Last durable position of the log",
               durable["durable_position"])
        series("eventstream_log_fsyncs_total", "counter", "fsyncs of the durable log", durable["fsyncs"])
        series("eventstream_log_fsync_seconds_total", "counter", "Time spent in durable-log fsyncs",
               durable["fsync_total_us"] / 1e6)
        series("eventstream_log_fsync_last_seconds", "gauge", "Duration of the last durable-log fsync",
               durable["fsync_last_us"] / 1e6)
        series("eventstream_log_bytes", "gauge", "Bytes of durable-log segments on disk", durable["bytes_on_disk"])
        series("eventstream_log_segments", "gauge", "Durable-log segments on disk", durable["segments"])
        series("eventstream_log_failed", "gauge", "1 when the durable log failed and publishing stops until restart",
               1 if durable.get("error") else 0)
    buckets, total, count = metrics.histogram()
    lines.append("# HELP eventstream_fanout_latency_ms From acceptance to the socket write, in milliseconds")
    lines.append("# TYPE eventstream_fanout_latency_ms histogram")
    for bound, cumulative in buckets:
        lines.append(f'eventstream_fanout_latency_ms_bucket{{le="{bound}"}} {cumulative}')
    lines.append(f'eventstream_fanout_latency_ms_bucket{{le="+Inf"}} {count}')
    lines.append(f"eventstream_fanout_latency_ms_sum {total:.3f}")
    lines.append(f"eventstream_fanout_latency_ms_count {count}")
    return "\n".join(lines) + "\n"
