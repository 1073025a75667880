"""One load run: connect, publish for the duration, drain, collect, summarise.

Timeline: (1) the server's idle RSS is sampled; (2) the subscriber processes open their
connections, paced and retried, and the RSS is sampled again (memory per connection);
(3) publishers run for `duration_s`, the first `warmup_s` of which are excluded from the rates and
latencies; (4) publishing stops, the harness waits until every expected delivery arrived or
nothing moved for a while (bounded by `drain_s`); (5) the workers report gaps, duplicates and
their latency histograms, which are merged here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .hdr import Histogram
from .probe import ServerProbe
from .procstat import load_average, machine_busy_jiffies, proc_cpu_seconds
from .publishers import HttpPublisher, WsPublisher
from .subscribers import CONNECTED, DISCONNECTS, EVENTS, FAILED, GAPS, RECONNECTS, SubscriberPool, WorkerSpec
from .wire import padding

_TICK_S = 0.001
_MAX_PER_TICK = 5000          # events one scheduler tick hands out at most (the rest stay due)
_SAMPLE_EVERY_S = 1.0
_QUIET_DRAIN_S = 1.0


@dataclass
class RunSpec:
    ws_url: str
    http_url: str | None = None
    connections: int = 100
    duration_s: float = 10.0
    warmup_s: float | None = None         # default: a fifth of the duration, at most 5 s
    topics: int = 1
    patterns: bool = False                # subscribe with one wildcard covering every topic
    publish_rate: float = 0.0             # events/s over all publishers; 0 = idle; inf = closed loop
    payload_bytes: int = 200
    publishers: int = 1
    processes: int = 2
    publish_via: str = "ws"               # "ws" or "http"
    token: str | None = None
    connect_rate: float = 2000.0          # new connections per second, over all processes
    connect_retries: int = 3
    reconnect: bool = False               # reconnect with lastEventId after a drop (recovery)
    latency_every: int = 1                # time every k-th connection's frames
    window_per_sub: int = 64              # closed loop: events outstanding per subscriber
    drain_s: float = 10.0
    restart_at_s: float | None = None     # restart the (spawned) server this far into publishing
    server_pid: int | None = None

    def warmup(self) -> float:
        return self.warmup_s if self.warmup_s is not None else min(5.0, self.duration_s / 5)


RestartHook = Callable[[], Awaitable[float]]


class _Progress:
    """The live line on stderr: rewritten in place on a terminal, one line every 5 s otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r\x1b[K" + text)
            sys.stderr.flush()
        elif time.monotonic() - self.last_print >= 5:
            self.last_print = time.monotonic()
            print(text, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _fanout_per_topic(spec: RunSpec) -> list[int]:
    if spec.patterns:
        return [spec.connections] * spec.topics
    counts = [0] * spec.topics
    for i in range(spec.connections):
        counts[i % spec.topics] += 1
    return counts


async def run_load(spec: RunSpec, restart: RestartHook | None = None, progress: bool = True,
                   server_pid: Callable[[], int | None] | None = None) -> dict[str, Any]:
    if spec.publish_via == "http" and not spec.http_url:
        raise ValueError("publishing over HTTP needs --http-url")
    tag = "b" + secrets.token_hex(4)
    live = _Progress(progress)
    probe = ServerProbe(spec.http_url, server_pid() if server_pid else spec.server_pid)
    samples: list[dict[str, Any]] = []
    result: dict[str, Any] = {"spec": dataclasses.asdict(spec), "tag": tag,
                              "machine": {"cores": os.cpu_count(), "loadavg_start": load_average()}}
    idle = await probe.sample()

    pool = SubscriberPool(WorkerSpec(
        ws_url=spec.ws_url, first_index=0, count=spec.connections, topics=spec.topics, patterns=spec.patterns,
        token=spec.token, tag=tag, connect_rate=spec.connect_rate, retries=spec.connect_retries,
        reconnect=spec.reconnect, latency_every=max(1, spec.latency_every)), spec.processes)
    publishers: list[Any] = []
    try:
        ramp_timeout = 60 + spec.connections / max(spec.connect_rate, 1) * 3
        live.show(f"connecting {spec.connections} subscribers over {len(pool.workers)} processes...")
        ramp = await pool.start(ramp_timeout)
        await asyncio.sleep(1.0)  # let the server settle before reading its memory
        connected_sample = await probe.sample()
        result["connections"] = _connection_summary(spec, ramp, idle, connected_sample)

        pad = padding(spec.payload_bytes)
        per_topic = _fanout_per_topic(spec)
        n_pub = max(1, min(spec.publishers, spec.topics)) if spec.publish_rate > 0 else 0
        for _ in range(n_pub):
            if spec.publish_via == "http":
                assert spec.http_url is not None
                publishers.append(HttpPublisher(spec.http_url, tag, pad, spec.token))
            else:
                publishers.append(WsPublisher(spec.ws_url, tag, pad, spec.token))
        await asyncio.gather(*(p.connect() for p in publishers))

        published = [0] * spec.topics
        state = {"scheduled": 0, "expected": 0}
        lag = Histogram()  # how late the scheduler handed events out (part of the measured latency)
        window: dict[str, Any] = {}
        t_start = time.monotonic()
        t_window = t_start + spec.warmup()
        t_end = t_start + spec.duration_s
        start_ns = time.time_ns()
        pool.set_window(start_ns + int(spec.warmup() * 1e9), start_ns + int(spec.duration_s * 1e9))

        async def sampler() -> None:
            while True:
                if server_pid is not None:
                    probe.pid = server_pid()
                sample = await probe.sample()
                if sample is not None:
                    samples.append(sample)
                now = time.monotonic()
                delivered = pool.total(EVENTS)
                live.show(
                    f"[{now - t_start:5.1f}/{spec.duration_s:g}s] conns {pool.total(CONNECTED)}/{spec.connections}"
                    f" published {state['scheduled']:,} delivered {delivered:,}/{state['expected']:,}"
                    f" gaps {pool.total(GAPS):,}" + (f" server rss {sample['rss_bytes'] / 2**20:.0f} MiB"
                                                      if sample and sample.get("rss_bytes") else ""))
                await asyncio.sleep(_SAMPLE_EVERY_S)

        def mark_window() -> None:
            window.update(t=time.monotonic(), delivered=pool.total(EVENTS), expected=state["expected"],
                          scheduled=state["scheduled"], busy=machine_busy_jiffies(), cpu=_cpu_of(pool, probe))

        sampler_task = asyncio.get_running_loop().create_task(sampler())
        restart_task: asyncio.Task[float] | None = None
        try:
            closed_loop = math.isinf(spec.publish_rate)
            budget = max(16384, spec.window_per_sub * spec.connections)
            while (now := time.monotonic()) < t_end:
                if not window and now >= t_window:
                    mark_window()
                if restart is not None and restart_task is None and spec.restart_at_s is not None \
                        and now - t_start >= spec.restart_at_s:
                    restart_task = asyncio.get_running_loop().create_task(restart())
                if publishers:
                    if closed_loop:
                        outstanding = state["expected"] - pool.total(EVENTS)
                        due = _MAX_PER_TICK if outstanding < budget else 0
                    else:
                        # Event i falls due at i / rate: floor(elapsed * rate) + 1 are due by now.
                        due = int((now - t_start) * spec.publish_rate) + 1 - state["scheduled"]
                    _schedule(min(due, _MAX_PER_TICK), spec, publishers, published, per_topic, state,
                              start_ns, closed_loop, budget, pool, lag)
                await asyncio.sleep(_TICK_S if publishers else 0.05)
            if not window:
                mark_window()
            end = {"t": time.monotonic(), "delivered": pool.total(EVENTS), "expected": state["expected"],
                   "scheduled": state["scheduled"], "busy": machine_busy_jiffies(), "cpu": _cpu_of(pool, probe)}
            for pub in publishers:
                await pub.close()
            if restart_task is not None:
                result["restart"] = {"downtime_s": round(await restart_task, 3), "at_s": spec.restart_at_s}
            drain = await _drain(pool, state, spec.drain_s)
        finally:
            sampler_task.cancel()
        final_sample = await probe.sample()
        if final_sample is not None:
            samples.append(final_sample)
        reports = await pool.stop(published)
    finally:
        pool.kill()
        probe.close()
    live.done()
    result["machine"]["loadavg_end"] = load_average()
    result.update(_summarise(spec, reports, published, state, window, end, drain, samples, publishers))
    result["publishing"]["send_lag_ms"] = lag.summary_ms()
    return result


def _schedule(due: int, spec: RunSpec, publishers: list[Any], published: list[int], per_topic: list[int],
              state: dict[str, int], start_ns: int, closed_loop: bool, budget: int, pool: SubscriberPool,
              lag: Histogram) -> None:
    """Hand `due` events to the publishers: event i goes to topic i mod T, published by the
    publisher that owns that topic, with the next sequence number of that topic."""
    if due <= 0:
        return
    batches: list[list[tuple[int, int, int]]] = [[] for _ in publishers]
    n_pub, n_topics = len(publishers), spec.topics
    now_ns = time.time_ns()
    interval_ns = 0 if closed_loop else 1e9 / spec.publish_rate
    if max(p.backlog() for p in publishers) > 100_000:
        return  # an HTTP publisher cannot get rid of its events (server down?): stop piling up
    for _ in range(due):
        i = state["scheduled"]
        topic = i % n_topics
        published[topic] += 1
        due_ns = now_ns if closed_loop else start_ns + int(i * interval_ns)
        lag.record((now_ns - due_ns) // 1000)
        batches[topic % n_pub].append((topic, published[topic], due_ns))
        state["scheduled"] = i + 1
        state["expected"] += per_topic[topic]
        if closed_loop and state["expected"] - pool.total(EVENTS) >= budget:
            break
    for pub, batch in zip(publishers, batches):
        if batch:
            pub.add(batch)


async def _drain(pool: SubscriberPool, state: dict[str, int], max_s: float) -> dict[str, Any]:
    """Wait until every expected delivery arrived, or nothing arrived for a second."""
    began = time.monotonic()
    last, last_change = pool.total(EVENTS), began
    while time.monotonic() - began < max_s:
        delivered = pool.total(EVENTS)
        if delivered >= state["expected"]:
            break
        if delivered != last:
            last, last_change = delivered, time.monotonic()
        elif time.monotonic() - last_change >= _QUIET_DRAIN_S:
            break
        await asyncio.sleep(0.02)
    return {"drain_s": round(time.monotonic() - began, 3), "complete": pool.total(EVENTS) >= state["expected"]}


def _cpu_of(pool: SubscriberPool, probe: ServerProbe) -> dict[str, float]:
    times = os.times()
    clients = sum(proc_cpu_seconds(pid) or 0.0 for pid in pool.pids())
    server = proc_cpu_seconds(probe.pid) if probe.pid else None
    return {"harness": times.user + times.system, "clients": clients, "server": server or 0.0}


def _connection_summary(spec: RunSpec, ramp: dict[str, Any], idle: dict[str, Any] | None,
                        after: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requested": spec.connections, "connected": ramp["connected"], "failed": ramp["failed"],
        "ramp_s": round(ramp["ramp_s"], 3),
        "connect_rate_per_s": round(ramp["connected"] / ramp["ramp_s"], 1) if ramp["ramp_s"] > 0 else None,
        "connect_errors": ramp["connect_errors"],
    }
    if idle and after and idle.get("rss_bytes") and after.get("rss_bytes"):
        out["server_rss_idle_bytes"] = idle["rss_bytes"]
        out["server_rss_connected_bytes"] = after["rss_bytes"]
        if ramp["connected"]:
            out["server_bytes_per_connection"] = round((after["rss_bytes"] - idle["rss_bytes"]) / ramp["connected"])
    return out


def _summarise(spec: RunSpec, reports: list[dict[str, Any]], published: list[int], state: dict[str, int],
               window: dict[str, Any], end: dict[str, Any], drain: dict[str, Any], samples: list[dict[str, Any]],
               publishers: list[Any]) -> dict[str, Any]:
    hist = Histogram.merged(Histogram.from_dict(r["hist"]) for r in reports)
    rows = [row for r in reports for row in r["subs"]]
    missing = [row[4] for row in rows]
    totals = [sum(r["totals"][i] for r in reports) for i in range(len(reports[0]["totals"]))] if reports else []
    span = max(end["t"] - window["t"], 1e-9)
    delivered_total = sum(row[1] for row in rows)
    worst = sorted(rows, key=lambda row: -row[4])[:10]
    pub_stats = [p.stats() for p in publishers]
    busy = (end["busy"][0] - window["busy"][0], end["busy"][1] - window["busy"][1])
    cores = os.cpu_count() or 1
    machine_busy = busy[0] / busy[1] * cores if busy[1] else 0.0
    cpu_use = {k: round((end["cpu"][k] - window["cpu"][k]) / span, 3) for k in end["cpu"]}
    delivered_per_s = (end["delivered"] - window["delivered"]) / span
    server_cores = cpu_use.get("server") or None
    out: dict[str, Any] = {
        "publishing": {
            "via": spec.publish_via if publishers else None,
            "publishers": len(publishers),
            "offered_events_per_s": None if math.isinf(spec.publish_rate) else spec.publish_rate,
            "closed_loop": math.isinf(spec.publish_rate),
            "events_published": sum(published),
            "events_per_s": round((end["scheduled"] - window["scheduled"]) / span, 1),
            "publisher_stats": pub_stats,
        },
        "delivery": {
            "window_s": round(span, 3),
            "offered_deliveries_per_s": round((end["expected"] - window["expected"]) / span, 1),
            "delivered_per_s": round(delivered_per_s, 1),
            # Server CPU per delivery is the cleaner comparison on a shared machine: it does not
            # depend on how much CPU the clients and other work left to the server.
            "server_cpu_us_per_delivery": round(server_cores / delivered_per_s * 1e6, 3)
            if server_cores and delivered_per_s > 0 else None,
            "expected_deliveries": state["expected"],
            "delivered": delivered_total,
            "all_delivered": delivered_total >= state["expected"] and sum(missing) == 0,
            "drain": drain,
            "missing": sum(missing),
            "duplicates": sum(row[3] for row in rows),
            "subscribers_with_gaps": sum(1 for m in missing if m),
            "max_missing_per_subscriber": max(missing, default=0),
            "worst_subscribers": [{"index": r[0], "events": r[1], "gaps_inside": r[2], "duplicates": r[3],
                                   "missing": r[4]} for r in worst if r[4] or r[3]],
            "disconnects": totals[DISCONNECTS] if totals else 0,
            "reconnects": totals[RECONNECTS] if totals else 0,
            "backpressure_notices_seen": totals[7] if totals else 0,
        },
        "latency_ms": {**hist.summary_ms(), "timed_every_kth_connection": spec.latency_every,
                       "queueing_only": math.isinf(spec.publish_rate)},
        "latency_histogram_us": hist.to_dict(),
        "cpu_cores": {**cpu_use, "machine_busy": round(machine_busy, 3),
                      "other": round(max(0.0, machine_busy - sum(cpu_use.values())), 3)},
        "server": _server_summary(spec, samples),
    }
    if reports:
        out["connections_final"] = {"failed_total": totals[FAILED], "connect_errors": _merge_errors(reports)}
    return out


def _merge_errors(reports: list[dict[str, Any]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for report in reports:
        for name, n in report["connect_errors"].items():
            merged[name] = merged.get(name, 0) + n
    return merged


def _server_summary(spec: RunSpec, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU and RSS over time, drops by reason. Counters restart from 0 when the server restarts,
    so only positive steps are added up."""
    if not samples:
        return {"available": False}
    series, dropped = [], {}
    t0 = samples[0]["t"]
    for prev, cur in zip(samples, samples[1:]):
        dt = cur["t"] - prev["t"]
        cpu = None
        if cur.get("cpu_seconds") is not None and prev.get("cpu_seconds") is not None and dt > 0:
            step = cur["cpu_seconds"] - prev["cpu_seconds"]
            cpu = round(step / dt, 3) if step >= 0 else None
        series.append({"t_s": round(cur["t"] - t0, 2), "cpu_cores": cpu, "rss_bytes": cur.get("rss_bytes")})
        for reason, value in (cur.get("dropped") or {}).items():
            before = (prev.get("dropped") or {}).get(reason, 0)
            dropped[reason] = dropped.get(reason, 0) + (value - before if value >= before else value)
    rss = [s["rss_bytes"] for s in samples if s.get("rss_bytes")]
    cpus = [s["cpu_cores"] for s in series if s["cpu_cores"] is not None]
    out: dict[str, Any] = {
        "available": True, "dropped": dropped,
        "cpu_cores_avg": round(sum(cpus) / len(cpus), 3) if cpus else None,
        "cpu_cores_max": max(cpus) if cpus else None,
        "rss_start_bytes": rss[0] if rss else None, "rss_end_bytes": rss[-1] if rss else None,
        "rss_max_bytes": max(rss) if rss else None,
        "rss_slope_kib_per_min_after_warmup": _slope_after(series, spec.warmup()),  # the series starts with publishing
        "series": series,
    }
    last = samples[-1]
    for key in ("slow_consumer_closes", "backpressure_notices"):
        if key in last:
            out[key] = last[key]
    return out


def _slope_after(series: list[dict[str, Any]], after_s: float) -> float | None:
    """Least-squares slope of RSS over the samples after `after_s` (KiB per minute)."""
    points = [(s["t_s"], s["rss_bytes"]) for s in series if s["t_s"] >= after_s and s.get("rss_bytes")]
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    slope = sum((t - mean_t) * (r - mean_r) for t, r in points) / var  # bytes per second
    return round(slope * 60 / 1024, 1)
