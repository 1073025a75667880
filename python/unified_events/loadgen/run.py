"""One load run: connect, publish for the duration, drain, collect, summarise.

Timeline: (1) the server's idle RSS is sampled; (2) the subscriber processes open their
connections, paced and retried, and the RSS is sampled again (memory per connection);
(3) publishers run for `duration_s`, the first `warmup_s` of which are excluded from the rates and
latencies; (4) publishing stops, the harness waits until every expected delivery arrived or
nothing moved for a while (bounded by `drain_s`); (5) the workers report gaps, duplicates and
their latency histograms, which `summary.py` merges.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .probe import ServerProbe
from .procstat import load_average, machine_busy_jiffies, proc_cpu_seconds
from .publishers import HttpPublisher, WsPublisher
from .schedule import Scheduler
from .subscribers import CONNECTED, EVENTS, GAPS, SubscriberPool, WorkerSpec
from .summary import connection_summary, summarise
from .wire import padding

_TICK_S = 0.001
_SAMPLE_EVERY_S = 1.0
_QUIET_DRAIN_S = 1.0
_SETTLE_S = 1.0  # after the ramp, before reading the server's memory


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
    reconnect_delay_s: float = 0.05       # wait this long before reconnecting
    latency_every: int = 1                # time every k-th connection's frames
    window_per_sub: int = 64              # closed loop: events outstanding per subscriber
    drain_s: float = 10.0
    restart_at_s: float | None = None     # restart the (spawned) server this far into publishing
    restart_crash: bool = False           # ... with SIGKILL instead of a graceful SIGTERM
    server_pid: int | None = None

    def warmup(self) -> float:
        return self.warmup_s if self.warmup_s is not None else min(5.0, self.duration_s / 5)


RestartHook = Callable[[bool], Awaitable[float]]  # (crash?) -> downtime in s


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


def fanout_per_topic(spec: RunSpec) -> list[int]:
    if spec.patterns:
        return [spec.connections] * spec.topics
    counts = [0] * spec.topics
    for i in range(spec.connections):
        counts[i % spec.topics] += 1
    return counts


async def run_load(spec: RunSpec, restart: RestartHook | None = None, progress: bool = True,
                   server_pid: Callable[[], int | None] | None = None) -> dict[str, Any]:
    """Run one load and return its report (see summary.py for the fields)."""
    return await _LoadRun(spec, restart, progress, server_pid).execute()


class _LoadRun:
    def __init__(self, spec: RunSpec, restart: RestartHook | None, progress: bool,
                 server_pid: Callable[[], int | None] | None) -> None:
        if spec.publish_via == "http" and not spec.http_url:
            raise ValueError("publishing over HTTP needs --http-url")
        self.spec, self.restart, self.server_pid = spec, restart, server_pid
        self.tag = "b" + secrets.token_hex(4)  # event ids are unique per run, so dedup never hits
        self.live = _Progress(progress)
        self.probe = ServerProbe(spec.http_url, server_pid() if server_pid else spec.server_pid)
        self.samples: list[dict[str, Any]] = []
        self.pool = SubscriberPool(WorkerSpec(
            ws_url=spec.ws_url, first_index=0, count=spec.connections, topics=spec.topics, patterns=spec.patterns,
            token=spec.token, tag=self.tag, connect_rate=spec.connect_rate, retries=spec.connect_retries,
            reconnect=spec.reconnect, latency_every=max(1, spec.latency_every),
            reconnect_delay_s=spec.reconnect_delay_s), spec.processes)
        self.publishers: list[Any] = []
        self.result: dict[str, Any] = {"spec": dataclasses.asdict(spec), "tag": self.tag,
                                       "machine": {"cores": os.cpu_count(), "loadavg_start": load_average()}}

    async def execute(self) -> dict[str, Any]:
        try:
            await self._ramp()
            schedule = await self._start_publishers()
            window, end, drain = await self._publish(schedule)
            final = await self.probe.sample()
            if final is not None:
                self.samples.append(final)
            reports = await self.pool.stop(schedule.published)
        finally:
            self.pool.kill()
            self.probe.close()
        self.live.done()
        self.result["machine"]["loadavg_end"] = load_average()
        self.result.update(summarise(self.spec, reports, schedule, window, end, drain, self.samples,
                                     self.publishers, restarted="restart" in self.result))
        return self.result

    async def _ramp(self) -> None:
        spec = self.spec
        idle = await self.probe.sample()
        self.live.show(f"connecting {spec.connections} subscribers over {len(self.pool.workers)} processes...")
        ramp = await self.pool.start(timeout=60 + spec.connections / max(spec.connect_rate, 1) * 3)
        await asyncio.sleep(_SETTLE_S)
        self.result["connections"] = connection_summary(spec, ramp, idle, await self.probe.sample())

    async def _start_publishers(self) -> Scheduler:
        spec = self.spec
        pad = padding(spec.payload_bytes)
        count = max(1, min(spec.publishers, spec.topics)) if spec.publish_rate > 0 else 0
        for _ in range(count):
            if spec.publish_via == "http":
                assert spec.http_url is not None
                self.publishers.append(HttpPublisher(spec.http_url, self.tag, pad, spec.token))
            else:
                self.publishers.append(WsPublisher(spec.ws_url, self.tag, pad, spec.token))
        await asyncio.gather(*(p.connect() for p in self.publishers))
        budget = max(16384, spec.window_per_sub * spec.connections)
        return Scheduler(spec.publish_rate, fanout_per_topic(spec), self.publishers, budget,
                         lambda: self.pool.total(EVENTS))

    def _snapshot(self, schedule: Scheduler) -> dict[str, Any]:
        """Counters at a window edge: rates are differences between two snapshots."""
        times = os.times()
        clients = sum(proc_cpu_seconds(pid) or 0.0 for pid in self.pool.pids())
        server = proc_cpu_seconds(self.probe.pid) if self.probe.pid else None
        return {"t": time.monotonic(), "delivered": self.pool.total(EVENTS), "expected": schedule.expected,
                "scheduled": schedule.scheduled, "busy": machine_busy_jiffies(),
                "cpu": {"harness": times.user + times.system, "clients": clients, "server": server or 0.0}}

    async def _publish(self, schedule: Scheduler) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        spec = self.spec
        self.pool.set_window(schedule.start_ns + int(spec.warmup() * 1e9),
                             schedule.start_ns + int(spec.duration_s * 1e9))
        t_window, t_end = schedule.start_mono + spec.warmup(), schedule.start_mono + spec.duration_s
        window: dict[str, Any] | None = None
        sampler = asyncio.get_running_loop().create_task(self._sample_forever(schedule))
        restart_task: asyncio.Task[float] | None = None
        try:
            while (now := time.monotonic()) < t_end:
                if window is None and now >= t_window:
                    window = self._snapshot(schedule)
                if self.restart is not None and restart_task is None and spec.restart_at_s is not None \
                        and now - schedule.start_mono >= spec.restart_at_s:
                    restart_task = asyncio.get_running_loop().create_task(self.restart(spec.restart_crash))
                schedule.tick()
                await asyncio.sleep(_TICK_S if self.publishers else 0.05)
            window = window or self._snapshot(schedule)
            end = self._snapshot(schedule)
            for publisher in self.publishers:
                await publisher.close()
            if restart_task is not None:
                self.result["restart"] = {"downtime_s": round(await restart_task, 3), "at_s": spec.restart_at_s,
                                          "signal": "SIGKILL" if spec.restart_crash else "SIGTERM"}
            drain = await self._drain(schedule)
        finally:
            sampler.cancel()
        return window, end, drain

    async def _sample_forever(self, schedule: Scheduler) -> None:
        """Server CPU/RSS every second (the series in the report), and the progress line."""
        spec, pool = self.spec, self.pool
        while True:
            if self.server_pid is not None:
                self.probe.pid = self.server_pid()  # a restarted server has a new pid
            sample = await self.probe.sample()
            if sample is not None:
                self.samples.append(sample)
            rss = f" server rss {sample['rss_bytes'] / 2**20:.0f} MiB" if sample and sample.get("rss_bytes") else ""
            self.live.show(
                f"[{time.monotonic() - schedule.start_mono:5.1f}/{spec.duration_s:g}s]"
                f" conns {pool.total(CONNECTED)}/{spec.connections} published {schedule.scheduled:,}"
                f" delivered {pool.total(EVENTS):,}/{schedule.expected:,} gaps {pool.total(GAPS):,}{rss}")
            await asyncio.sleep(_SAMPLE_EVERY_S)

    async def _drain(self, schedule: Scheduler) -> dict[str, Any]:
        """Wait until every expected delivery arrived, or nothing arrived for a second."""
        began = time.monotonic()
        last, last_change = self.pool.total(EVENTS), began
        while time.monotonic() - began < self.spec.drain_s:
            delivered = self.pool.total(EVENTS)
            if delivered >= schedule.expected:
                break
            if delivered != last:
                last, last_change = delivered, time.monotonic()
            elif time.monotonic() - last_change >= _QUIET_DRAIN_S:
                break
            await asyncio.sleep(0.02)
        return {"drain_s": round(time.monotonic() - began, 3),
                "complete": self.pool.total(EVENTS) >= schedule.expected}
