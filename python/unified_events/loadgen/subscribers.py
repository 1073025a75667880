"""Subscriber processes: each opens its share of the picows connections and checks every frame.

A worker keeps, per connection, the next sequence number it expects on each topic it follows:
a higher one is a gap (the difference is counted as missing), a lower one a duplicate. Sampled
connections also record publish-to-receive latency into the process's histogram. Running totals
are copied into shared memory every few milliseconds (the parent's progress line and closed-loop
publisher read them); the full report goes back over a pipe when the parent says stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .hdr import Histogram
from .procstat import die_with_parent
from .wire import BACKPRESSURE_MARK, EVENT_RE, SHUTDOWN_MARK, event_id, pattern_for_all, topic_name

# Slots of each worker's row in the shared counter array.
CONNECTED, FAILED, EVENTS, GAPS, DUPS, DISCONNECTS, RECONNECTS, NOTICES = range(8)
SLOTS = 8
_PUBLISH_PERIOD_S = 0.002
_CONNECT_CONCURRENCY = 128
_WELCOME_WAIT_S = 15.0
_RECONNECT_MAX_BACKOFF_S = 1.0


@dataclass
class WorkerSpec:
    ws_url: str
    first_index: int
    count: int
    topics: int
    patterns: bool
    token: str | None
    tag: str
    connect_rate: float  # connections per second this worker opens
    retries: int
    reconnect: bool
    latency_every: int
    reconnect_delay_s: float = 0.05


@dataclass(slots=True)
class Sub:
    index: int
    follows: list[int]
    next_seq: dict[int, int] = field(default_factory=dict)
    events: int = 0
    gaps: int = 0
    dups: int = 0
    last: tuple[int, int] | None = None
    transport: Any = None
    welcomed: bool = False
    ever_connected: bool = False


def subscriber_url(spec: WorkerSpec, sub: Sub) -> str:
    if spec.patterns:
        params = [f"topic={quote(pattern_for_all())}"]
    else:
        params = [f"topic={topic_name(k)}" for k in sub.follows]
    if spec.token:
        params.append(f"token={quote(spec.token)}")
    if sub.last is not None:  # resume where this connection stopped (server replays from its log)
        params.append(f"lastEventId={quote(event_id(spec.tag, *sub.last))}")
    sep = "&" if "?" in spec.ws_url else "?"
    return spec.ws_url + sep + "&".join(params)


def worker_main(ctl: Any, counters: Any, window: Any, slot: int, spec: WorkerSpec) -> None:
    """Process entry point. `window[0:2]` is the latency window [start, end) in epoch ns, set by
    the parent after the warm-up; frames due outside it are checked but not timed."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import uvloop

    uvloop.run(_Worker(ctl, counters, window, slot, spec).main())


class _Worker:
    def __init__(self, ctl: Any, counters: Any, window: Any, slot: int, spec: WorkerSpec) -> None:
        self.ctl, self.counters, self.window, self.spec = ctl, counters, window, spec
        self.base = slot * SLOTS
        self.hist = Histogram()
        self.subs = [Sub(i, list(range(spec.topics)) if spec.patterns else [i % spec.topics])
                     for i in range(spec.first_index, spec.first_index + spec.count)]
        self.totals = [0] * SLOTS
        self.stopping = False
        self.connect_errors: dict[str, int] = {}

    def listener(self, sub: Sub) -> Any:
        from picows import WSListener, WSMsgType

        worker, totals, hist, window = self, self.totals, self.hist, self.window
        timed = sub.index % self.spec.latency_every == 0
        search, time_ns = EVENT_RE.search, time.time_ns

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()
                    return
                data = frame.get_payload_as_bytes()
                match = search(data)
                if match is None:
                    if not sub.welcomed:
                        sub.welcomed = True
                    elif BACKPRESSURE_MARK in data:
                        totals[NOTICES] += 1
                    elif SHUTDOWN_MARK in data:
                        transport.disconnect()  # let the server restart promptly; we reconnect
                    return
                topic, seq = int(match[1]), int(match[2])
                expected = sub.next_seq.get(topic, 1)
                if seq == expected:
                    sub.next_seq[topic] = seq + 1
                elif seq > expected:
                    sub.gaps += seq - expected
                    totals[GAPS] += seq - expected
                    sub.next_seq[topic] = seq + 1
                else:
                    sub.dups += 1
                    totals[DUPS] += 1
                sub.events += 1
                totals[EVENTS] += 1
                sub.last = (topic, seq)
                if timed:
                    due = int(match[3])
                    if window[0] <= due < window[1]:
                        hist.record((time_ns() - due) // 1000)

            def on_ws_disconnected(self, transport: Any) -> None:
                totals[DISCONNECTS] += 1
                sub.transport = None
                if worker.spec.reconnect and not worker.stopping:
                    asyncio.get_running_loop().create_task(worker.reconnect(sub))

        return Listener()

    async def connect(self, sub: Sub, attempts: int) -> bool:
        from picows import ws_connect

        for attempt in range(attempts):
            if self.stopping:
                return False
            try:
                transport, _ = await ws_connect(lambda: self.listener(sub), subscriber_url(self.spec, sub),
                                                websocket_handshake_timeout=10)
                sub.transport = transport
                sub.ever_connected = True
                return True
            except Exception as exc:  # refused, reset, 503 while full or restarting...
                name = type(exc).__name__
                self.connect_errors[name] = self.connect_errors.get(name, 0) + 1
                await asyncio.sleep(min(_RECONNECT_MAX_BACKOFF_S, 0.05 * 2 ** attempt))
        return False

    async def reconnect(self, sub: Sub) -> None:
        # A delay makes sure events are published while this subscriber is away, so a recovery
        # run tests the server's replay rather than how fast clients come back.
        await asyncio.sleep(self.spec.reconnect_delay_s)
        # Keep trying until the parent stops us: the run's duration bounds this loop.
        while not self.stopping and sub.transport is None:
            if await self.connect(sub, 1):
                self.totals[RECONNECTS] += 1
                return
            await asyncio.sleep(0.1)

    def publish_counters(self) -> None:
        counters, base = self.counters, self.base
        for i, value in enumerate(self.totals):
            counters[base + i] = value
        if not self.stopping:
            asyncio.get_running_loop().call_later(_PUBLISH_PERIOD_S, self.publish_counters)

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.publish_counters()
        gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)
        started = time.monotonic()

        async def open_one(n: int, sub: Sub) -> None:
            # Paced: connection n starts no earlier than n / rate seconds into the ramp.
            delay = started + n / self.spec.connect_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with gate:
                ok = await self.connect(sub, self.spec.retries + 1)
            self.totals[CONNECTED if ok else FAILED] += 1

        await asyncio.gather(*(open_one(n, sub) for n, sub in enumerate(self.subs)))
        ramp_s = time.monotonic() - started
        deadline = time.monotonic() + _WELCOME_WAIT_S
        while time.monotonic() < deadline and any(s.transport is not None and not s.welcomed for s in self.subs):
            await asyncio.sleep(0.01)
        self.ctl.send(("ready", self.totals[CONNECTED], self.totals[FAILED], ramp_s, dict(self.connect_errors)))

        done: asyncio.Future[list[int]] = loop.create_future()

        def on_command() -> None:
            try:
                cmd = self.ctl.recv()
            except EOFError:
                cmd = ("stop", [])
            if cmd[0] == "stop" and not done.done():
                done.set_result(cmd[1])

        loop.add_reader(self.ctl.fileno(), on_command)
        os.set_blocking(self.ctl.fileno(), True)  # add_reader made it non-blocking; the report can be large
        published = await done
        loop.remove_reader(self.ctl.fileno())
        self.stopping = True
        self.ctl.send(("report", self.report(published)))
        for sub in self.subs:
            if sub.transport is not None:
                with contextlib.suppress(Exception):
                    sub.transport.disconnect()
        await asyncio.sleep(0.05)

    def report(self, published: list[int]) -> dict[str, Any]:
        """Per subscriber: (index, events, gaps inside, duplicates, missing, ever connected). `missing`
        adds the events published on a followed topic after the last one this subscriber saw (a gap
        at the end that no later event would reveal); a subscriber that never connected misses all."""
        rows = []
        for sub in self.subs:
            tail = 0
            for topic in sub.follows:
                if topic < len(published):
                    tail += max(0, published[topic] - (sub.next_seq.get(topic, 1) - 1))
            rows.append((sub.index, sub.events, sub.gaps, sub.dups, sub.gaps + tail, sub.ever_connected))
        times = os.times()
        return {"subs": rows, "hist": self.hist.to_dict(), "totals": list(self.totals),
                "cpu_s": times.user + times.system, "connect_errors": self.connect_errors}


class SubscriberPool:
    """`count` subscribers spread over `processes` worker processes."""

    def __init__(self, spec: WorkerSpec, processes: int) -> None:
        ctx = mp.get_context("spawn")  # a clean interpreter: no inherited event loop or sockets
        processes = max(1, min(processes, spec.count or 1))
        self.counters = ctx.RawArray("q", processes * SLOTS)
        self.window = ctx.RawArray("q", 2)
        self.workers: list[tuple[Any, Any]] = []
        first = spec.first_index
        for i in range(processes):
            share = spec.count // processes + (1 if i < spec.count % processes else 0)
            worker_spec = WorkerSpec(**{**spec.__dict__, "first_index": first, "count": share,
                                        "connect_rate": spec.connect_rate / processes})
            first += share
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, self.counters, self.window, i, worker_spec),
                               daemon=True)
            self.workers.append((proc, parent))

    def total(self, slot: int) -> int:
        return sum(self.counters[i * SLOTS + slot] for i in range(len(self.workers)))

    def set_window(self, start_ns: int, end_ns: int) -> None:
        self.window[0], self.window[1] = start_ns, end_ns

    def pids(self) -> list[int]:
        return [p.pid for p, _ in self.workers if p.pid is not None]

    async def _recv(self, conn: Any, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            loop.remove_reader(conn.fileno())
        os.set_blocking(conn.fileno(), True)
        return conn.recv()

    async def start(self, timeout: float) -> dict[str, Any]:
        """Start the workers and wait for their connection ramps. Returns the ramp summary."""
        for proc, _ in self.workers:
            proc.start()
        replies = await asyncio.gather(*(self._recv(c, timeout) for _, c in self.workers))
        errors: dict[str, int] = {}
        for reply in replies:
            for name, n in reply[4].items():
                errors[name] = errors.get(name, 0) + n
        return {"connected": sum(r[1] for r in replies), "failed": sum(r[2] for r in replies),
                "ramp_s": max(r[3] for r in replies), "connect_errors": errors}

    async def stop(self, published: list[int]) -> list[dict[str, Any]]:
        reports = []
        for proc, conn in self.workers:
            if not proc.is_alive():
                continue
            with contextlib.suppress(Exception):
                conn.send(("stop", published))
                reply = await self._recv(conn, 30)
                reports.append(reply[1])
        self.kill()
        return reports

    def kill(self) -> None:
        for proc, _ in self.workers:
            if proc.pid is None:
                continue
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
