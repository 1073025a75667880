"""Fan-out benchmark: unified-events against a `websockets.broadcast()` baseline, in one run.

    /work/main/.venv/bin/python bench/fanout.py [--quick] [--json FILE]

For each server (unified-events, then bench/baseline_server.py) it starts the server as a
subprocess, subscriber load in separate processes (picows clients) and a publisher (this
process, picows, publishing over WebSocket), and measures:

  (a) saturation throughput: deliveries/s counted at the clients with 100 and 1000 subscribers,
      the publisher keeping a bounded window of undelivered deliveries (so the servers get as
      much as they can take without building an unbounded backlog);
  (b) server CPU per delivery in that window (utime+stime of the server process from /proc);
  (c) paced latency: 50 and 100 msgs/s offered to 1000 subscribers (50k and 100k deliveries/s):
      publish-to-receive latency p50/p99/max and delivered/offered.

Method notes (see bench/README.md): everything on 127.0.0.1, the machine's cores are shared
by server, subscribers and publisher; clients count frames in a Python callback with no
parsing; latency is parsed (`t_ns` found by a byte search) on every frame of every
`--sample-every`-th connection. Every loop is bounded in count and time; child processes are
killed at the end even on error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
HOST = "127.0.0.1"
TOPIC = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAD = b"x" * 160  # frame on the wire is ~300 bytes, as in shared/reference/stack-notes.md section 3


# ----------------------------------------------------------------------------- small helpers

def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the process that started it dies (no orphans)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a whole process (all threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def kernel_threads_cpu() -> float:
    """CPU seconds of all kernel threads (children of kthreadd: ksoftirqd, kworkers...). Under
    heavy loopback traffic part of the TCP work runs in ksoftirqd, on the benchmark's behalf."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[1] == b"2" or entry.name == "2":  # ppid 2 = kthreadd
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def machine_busy() -> dict[str, Any]:
    """All-CPU jiffies by category from /proc/stat, and the kernel threads' CPU seconds."""
    with open("/proc/stat", "rb") as f:
        vals = [int(v) for v in f.readline().split()[1:9]]
    return {"cpu": dict(zip(_STAT_FIELDS, vals)), "kthreads": kernel_threads_cpu()}


def machine_delta(a: dict[str, Any], b: dict[str, Any], elapsed: float) -> dict[str, float]:
    """Cores used over the window, by /proc/stat category."""
    d = {k: (b["cpu"][k] - a["cpu"][k]) / CLK_TCK / elapsed for k in _STAT_FIELDS}
    out = {f"{k}_cores": round(d[k], 3) for k in ("user", "system", "softirq", "irq", "steal")}
    out["busy_cores"] = round(sum(v for k, v in d.items() if k not in ("idle", "iowait")), 3)
    out["busy_fraction"] = round(out["busy_cores"] / (os.cpu_count() or 1), 3)
    out["kernel_threads_cores"] = round((b["kthreads"] - a["kthreads"]) / elapsed, 3)
    return out


def percentiles(samples: array, qs: tuple[float, ...] = (0.5, 0.9, 0.99, 0.999)) -> dict[str, float | None]:
    """Latency stats in ms from an array of ns samples."""
    if not samples:
        return {"count": 0, **{f"p{q * 100:g}": None for q in qs}, "max": None, "mean": None}
    s = sorted(samples)
    n = len(s)
    out: dict[str, float | None] = {"count": n}
    for q in qs:
        out[f"p{q * 100:g}"] = round(s[min(n - 1, int(q * n))] / 1e6, 3)
    out["max"] = round(s[-1] / 1e6, 3)
    out["mean"] = round(sum(s) / n / 1e6, 3)
    return out


HIST_BOUNDS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


def histogram(samples: array) -> dict[str, int]:
    """Counts of samples per latency bucket (upper bounds in ms; the last one is unbounded)."""
    import bisect
    bounds_ns = [b * 1e6 for b in HIST_BOUNDS_MS]
    counts = [0] * (len(bounds_ns) + 1)
    for v in samples:
        counts[bisect.bisect_left(bounds_ns, v)] += 1
    labels = [f"<={b:g}ms" for b in HIST_BOUNDS_MS] + [f">{HIST_BOUNDS_MS[-1]:g}ms"]
    return {k: c for k, c in zip(labels, counts) if c}


# ----------------------------------------------------------------------------- subscriber process

def subscriber_worker(ctl: Any, counters: Any, slot: int, url: str, n: int, sample_every: int,
                      first_index: int) -> None:
    """Open `n` picows connections to `url` and count frames; runs in its own process.

    Commands over the pipe `ctl`: ("mark",) starts a latency window, ("report",) ends it and
    returns the samples, ("stop",) closes everything. The running frame count is copied into
    `counters[slot]` every millisecond (the publisher paces by it).
    """
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import uvloop
    from picows import WSListener, ws_connect

    state = {"total": 0, "recording": False, "disconnected": 0, "lat": array("q"), "nonevent": 0}
    lat_cap = 6_000_000

    class Counting(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            state["total"] += 1

        def on_ws_disconnected(self, transport: Any) -> None:
            state["disconnected"] += 1

    class Sampling(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            state["total"] += 1
            if state["recording"]:
                b = frame.get_payload_as_bytes()
                i = b.find(b'"t_ns":')
                if i >= 0:
                    lat = state["lat"]
                    if len(lat) < lat_cap:
                        lat.append(time.time_ns() - int(b[i + 7:i + 26]))
                else:
                    state["nonevent"] += 1

        def on_ws_disconnected(self, transport: Any) -> None:
            state["disconnected"] += 1

    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transports: list[Any] = []
        sem = asyncio.Semaphore(64)

        async def connect(i: int) -> None:
            cls = Sampling if (first_index + i) % sample_every == 0 else Counting
            async with sem:
                for attempt in range(5):
                    try:
                        t, _ = await ws_connect(cls, url, websocket_handshake_timeout=10)
                        transports.append(t)
                        return
                    except OSError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.2 * (attempt + 1))

        await asyncio.wait_for(asyncio.gather(*(connect(i) for i in range(n))), timeout=90)
        # Every connection's first frame is the welcome: wait for all of them, then count from 0.
        deadline = time.monotonic() + 30
        while state["total"] < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        welcomes = state["total"]
        state["total"] = 0

        def publish_count() -> None:
            counters[slot] = state["total"]
            loop.call_later(0.001, publish_count)

        publish_count()
        done = loop.create_future()
        cpu_mark = [cpu()]

        def on_command() -> None:
            try:
                cmd = ctl.recv()
            except EOFError:
                if not done.done():
                    done.set_result(None)
                return
            if cmd[0] == "mark":
                state["lat"] = array("q")
                state["recording"] = True
                cpu_mark[0] = cpu()
                ctl.send(("ok", state["total"]))
            elif cmd[0] == "report":
                state["recording"] = False
                samples, state["lat"] = state["lat"], array("q")
                ctl.send(("report", samples.tobytes(), state["total"], cpu() - cpu_mark[0],
                          state["disconnected"], state["nonevent"]))
            elif cmd[0] == "stop":
                if not done.done():
                    done.set_result(None)

        loop.add_reader(ctl.fileno(), on_command)
        os.set_blocking(ctl.fileno(), True)  # add_reader made it non-blocking; replies can be large
        ctl.send(("ready", len(transports), welcomes))
        await done
        loop.remove_reader(ctl.fileno())
        for t in transports:
            with contextlib.suppress(Exception):
                t.disconnect()
        await asyncio.sleep(0.05)
        with contextlib.suppress(Exception):
            ctl.send(("stopped", state["total"]))

    uvloop.run(main())


class Subscribers:
    """N subscriber connections spread over `procs` processes."""

    def __init__(self, url: str, n: int, procs: int, sample_every: int) -> None:
        self.url, self.n, self.procs, self.sample_every = url, n, procs, sample_every
        ctx = mp.get_context("spawn")
        self.counters = ctx.RawArray("q", procs)
        self.workers: list[tuple[Any, Any]] = []
        self.final_total = 0
        per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        first = 0
        for i, count in enumerate(per):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=subscriber_worker, daemon=True,
                            args=(child, self.counters, i, url, count, sample_every, first))
            first += count
            self.workers.append((p, parent))

    def total(self) -> int:
        return sum(self.counters)

    def pids(self) -> set[int]:
        return {p.pid for p, _ in self.workers if p.pid is not None}

    async def _rpc(self, conn: Any, msg: tuple[Any, ...] | None, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        if msg is not None:
            conn.send(msg)
        fut = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: fut.done() or fut.set_result(None))
        os.set_blocking(conn.fileno(), True)  # add_reader made it non-blocking; replies can be large
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            loop.remove_reader(conn.fileno())
        return conn.recv()

    async def start(self) -> None:
        for p, _ in self.workers:
            p.start()
        replies = await asyncio.gather(*(self._rpc(c, None, 150) for _, c in self.workers))
        connected = sum(r[1] for r in replies)
        welcomes = sum(r[2] for r in replies)
        if connected != self.n or welcomes != self.n:
            raise RuntimeError(f"subscribers: {connected}/{self.n} connected, {welcomes} welcome frames")

    async def mark(self) -> None:
        await asyncio.gather(*(self._rpc(c, ("mark",), 10) for _, c in self.workers))

    async def report(self) -> dict[str, Any]:
        replies = await asyncio.gather(*(self._rpc(c, ("report",), 30) for _, c in self.workers))
        lat = array("q")
        for r in replies:
            lat.frombytes(r[1])
        return {"lat": lat, "cpu_s": sum(r[3] for r in replies), "disconnected": sum(r[4] for r in replies),
                "nonevent_sampled": sum(r[5] for r in replies)}

    async def stop(self) -> None:
        self.final_total = self.total()
        for p, c in self.workers:
            if p.is_alive():
                with contextlib.suppress(Exception):
                    await self._rpc(c, ("stop",), 5)
        self.kill()

    def kill(self) -> None:
        for p, _ in self.workers:
            if p.is_alive():
                p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join(timeout=2)


# ----------------------------------------------------------------------------- publisher (this process)

class Publisher:
    """One picows connection publishing `{"type":"publish",...}` frames; counts acks and errors."""

    def __init__(self, tag: str) -> None:
        self.tag = tag.encode()
        self.seq = 0
        self.acks = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.transport: Any = None

    async def connect(self, url: str) -> None:
        from picows import WSListener, WSMsgType, ws_connect
        pub = self

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                    transport.disconnect()
                    return
                b = frame.get_payload_as_bytes()
                if b.startswith(b'{"type":"ack"'):
                    pub.acks += 1
                elif b'"error"' in b[:20] or b'"warning"' in b[:20]:
                    pub.errors += 1
                    if len(pub.error_samples) < 5:
                        pub.error_samples.append(b[:300].decode("utf-8", "replace"))

        self.transport, _ = await ws_connect(Listener, url, websocket_handshake_timeout=10)

    def send(self, count: int) -> None:
        from picows import WSMsgType
        t = self.transport
        tag, seq = self.tag, self.seq
        for _ in range(count):
            seq += 1
            t.send(WSMsgType.TEXT, b'{"type":"publish","topic":"bench","event":{"id":"%s-%d","type":"bench",'
                                   b'"payload":{"seq":%d,"t_ns":%d,"pad":"%s"}}}'
                   % (tag, seq, seq, time.time_ns(), PAD))
        self.seq = seq

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.disconnect()


async def run_saturation(pub: Publisher, subs: Subscribers, n: int, acks: bool, warmup: float, duration: float,
                         window: int, max_inflight: int, server_pid: int) -> dict[str, Any]:
    """Publish as fast as deliveries come back: at most `window` deliveries outstanding
    (published x N - counted at clients) and, where the server acks, `max_inflight` un-acked."""
    start_seq, start_acks = pub.seq, pub.acks
    start_total = subs.total()
    forgiven = 0  # deliveries written off after a stall (dropped by the server)
    stalls = 0
    last_total, last_progress = subs.total(), time.perf_counter()
    t_begin = time.perf_counter()
    t_mark = t_begin + warmup
    t_end = t_mark + duration
    marked: dict[str, Any] | None = None
    iterations = 0
    while True:
        now = time.perf_counter()
        if marked is None and now >= t_mark:
            marked = await _open_window(pub, subs, server_pid)
            now = time.perf_counter()
        if now >= t_end or iterations > 10_000_000:
            break
        iterations += 1
        total = subs.total()
        if total != last_total:
            last_total, last_progress = total, now
        backlog = (pub.seq - start_seq) * n - total - forgiven
        if backlog > 0 and now - last_progress > 0.5:
            forgiven += backlog
            stalls += 1
            backlog = 0
            last_progress = now
        room = (window - backlog) // n
        if acks:
            room = min(room, max_inflight - ((pub.seq - start_seq) - (pub.acks - start_acks)))
        if room > 0:
            pub.send(min(room, 512))
        await asyncio.sleep(0.001)
    assert marked is not None
    w, drained = await _close_window(pub, subs, marked, server_pid)
    return {
        "subscribers": n,
        **w,
        "events_per_s": round(w["published"] / w["window_s"]),
        "stalls": stalls,
        "undelivered_after_drain": (pub.seq - start_seq) * n - (drained["total"] - start_total),
        "window_deliveries": window,
    }


async def run_paced(pub: Publisher, subs: Subscribers, n: int, rate: float, warmup: float, duration: float,
                    server_pid: int) -> dict[str, Any]:
    """Publish `rate` msgs/s on a fixed schedule; t_ns is stamped at send."""
    interval = 1.0 / rate
    t_begin = time.perf_counter()
    t_mark = t_begin + warmup
    t_end = t_mark + duration
    next_due = t_begin
    marked: dict[str, Any] | None = None
    late_sends = 0
    start_seq = pub.seq
    start_total = subs.total()
    for _ in range(int((warmup + duration) * (rate + 2000)) + 100):  # bounded; the clock ends it
        now = time.perf_counter()
        if marked is None and now >= t_mark:
            marked = await _open_window(pub, subs, server_pid)
            now = time.perf_counter()
        if now >= t_end:
            break
        due = 0
        while next_due <= now and due < 1000:
            due += 1
            next_due += interval
        if due > 1:
            late_sends += due - 1
        if due:
            pub.send(due)
        await asyncio.sleep(max(0.0, next_due - time.perf_counter()))
    assert marked is not None
    w, drained = await _close_window(pub, subs, marked, server_pid)
    published = w["published"]
    return {
        "subscribers": n,
        "offered_msgs_per_s": rate,
        "offered_deliveries_per_s": round(rate * n),
        **w,
        "delivered_over_offered": round(w["deliveries"] / (published * n), 4) if published else None,
        "all_delivered_after_drain": f"{drained['total'] - start_total}/{(pub.seq - start_seq) * n}",
        "late_sends": late_sends,
    }


async def _open_window(pub: Publisher, subs: Subscribers, server_pid: int) -> dict[str, Any]:
    """Start the measurement window: the counters every phase reports deltas of."""
    await subs.mark()
    return {"t": time.perf_counter(), "delivered": subs.total(), "server_cpu": proc_cpu_seconds(server_pid),
            "seq": pub.seq, "machine": machine_busy(), "self_cpu": _self_cpu()}


async def _close_window(pub: Publisher, subs: Subscribers, marked: dict[str, Any], server_pid: int,
                        ) -> tuple[dict[str, Any], dict[str, int]]:
    """End the window: what every phase reports, and the drained totals (read after the window)."""
    t1 = time.perf_counter()
    delivered1 = subs.total()
    cpu1 = proc_cpu_seconds(server_pid)
    machine1 = machine_busy()
    self_cpu1 = _self_cpu()
    seq1 = pub.seq
    rep = await subs.report()
    drained = await drain(subs)
    elapsed = t1 - marked["t"]
    delivered = delivered1 - marked["delivered"]
    server_cpu = cpu1 - marked["server_cpu"]
    window = {
        "window_s": round(elapsed, 3),
        "published": seq1 - marked["seq"],
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / elapsed),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_us_per_delivery": round(server_cpu / delivered * 1e6, 3) if delivered else None,
        "server_cpu_cores": round(server_cpu / elapsed, 3),
        "subscriber_cpu_cores": round(rep["cpu_s"] / elapsed, 3),
        "publisher_cpu_cores": round((self_cpu1 - marked["self_cpu"]) / elapsed, 3),
        "machine": machine_delta(marked["machine"], machine1, elapsed),
        "latency_ms": percentiles(rep["lat"]),
        "latency_histogram": histogram(rep["lat"]),
        "subscriber_disconnects": rep["disconnected"],
        "non_event_frames_on_sampled_connections": rep["nonevent_sampled"],
    }
    return window, drained


DISTURBED_CORES = 0.15  # CPU used by anything but this benchmark above this -> the window is flagged


def _account(r: dict[str, Any]) -> dict[str, Any]:
    """Add `other_cores`: machine busy minus the benchmark's own processes and the kernel threads
    (anything else that ran on the machine in the window, short-lived processes included), and
    flag the window."""
    ours = (r["server_cpu_cores"] + r["subscriber_cpu_cores"] + r["publisher_cpu_cores"]
            + r["machine"]["kernel_threads_cores"])
    other = max(0.0, r["machine"]["busy_cores"] - ours)
    r["machine"]["other_cores"] = round(other, 3)
    r["disturbed"] = other > DISTURBED_CORES
    return r


async def wait_quiet(max_wait: float, say: Any) -> float:
    """Wait (at most `max_wait` s) until the machine is idle apart from us: under DISTURBED_CORES
    busy over 0.5 s. Returns the busy cores last seen (our idle processes included)."""
    deadline = time.monotonic() + max_wait
    waited = False
    while True:
        a = machine_busy()["cpu"]
        await asyncio.sleep(0.5)
        b = machine_busy()["cpu"]
        busy = sum(b[k] - a[k] for k in _STAT_FIELDS if k not in ("idle", "iowait")) / CLK_TCK / 0.5
        if busy < DISTURBED_CORES or time.monotonic() >= deadline:
            if waited:
                say(f"machine {'quiet' if busy < DISTURBED_CORES else 'still busy'} ({busy:.2f} cores busy)")
            return busy
        if not waited:
            say(f"waiting up to {max_wait:g} s for other work on the machine to finish ({busy:.2f} cores busy)")
            waited = True


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def drain(subs: Subscribers, quiet_s: float = 0.3, max_s: float = 10.0) -> dict[str, int]:
    """Wait until the clients stop receiving (quiet for `quiet_s`), at most `max_s`."""
    deadline = time.perf_counter() + max_s
    last, last_change = subs.total(), time.perf_counter()
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
        total = subs.total()
        if total != last:
            last, last_change = total, time.perf_counter()
        elif time.perf_counter() - last_change >= quiet_s:
            break
    return {"total": last}


# ----------------------------------------------------------------------------- servers

class Server:
    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self.ws_port = free_port()
        self.http_port = free_port() if name == "unified" else None
        self.log_path = tmp / f"{name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_base(self) -> str:
        return f"ws://{HOST}:{self.ws_port}/events"

    def command(self) -> list[str]:
        if self.name == "unified":
            cfg = self.tmp / "unified.toml"
            cfg.write_text(
                f'host = "{HOST}"\nhttp_port = {self.http_port}\nws_port = {self.ws_port}\n'
                f'data_dir = "{self.tmp / "data"}"\nlog_level = "info"\n'
                "max_queued_bytes = 16777216\n"
                "max_pending_messages = 100000\n"
                "[rate_limit]\nmessages_per_second = 10000000\nburst_size = 10000000\n"
            )
            return [sys.executable, "-m", "unified_events.cli", "serve", "--config", str(cfg)]
        return [sys.executable, str(BENCH_DIR / "baseline_server.py"), "--host", HOST, "--port", str(self.ws_port)]

    async def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     cwd=self.tmp, preexec_fn=_die_with_parent)
        log.close()
        want = f"listening ws://{HOST}:{self.ws_port}/events"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if want in self.log_path.read_text(errors="replace"):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} server not listening after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def metrics(self) -> dict[str, Any] | None:
        if self.http_port is None:
            return None
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.http_port}/metrics", timeout=5) as r:
                return json.loads(r.read())
        except Exception as exc:  # reported, not fatal
            return {"error": repr(exc)}

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def stop(self, timeout: float = 10) -> tuple[int | None, float]:
        """SIGTERM, wait (without blocking the loop) up to `timeout`, then SIGKILL.
        Returns (exit code, seconds it took to exit)."""
        if self.proc is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            while self.proc.poll() is None and time.monotonic() - t0 < timeout:
                await asyncio.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode, round(time.monotonic() - t0, 3)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


# ----------------------------------------------------------------------------- one server, all phases

async def bench_server(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = Server(name, tmp)
    result: dict[str, Any] = {"server": name, "phases": {}}
    subs: Subscribers | None = None
    pub = Publisher(f"{name}-{os.getpid()}-{int(time.time())}")
    acks = name == "unified"
    client_total = 0
    say = lambda msg: print(f"  [{name}] {msg}", flush=True)  # noqa: E731
    try:
        await server.start()
        assert server.proc is not None
        pid = server.proc.pid
        url = f"{server.ws_base}?topic={TOPIC}"
        await pub.connect(server.ws_base)
        for n in args.sat_subscribers:
            say(f"saturation, {n} subscribers: connecting")
            subs = Subscribers(url, n, args.sub_procs, args.sample_every)
            await subs.start()
            say(f"saturation, {n} subscribers: {args.warmup:g}+{args.duration:g} s")
            window = max(args.min_window, args.window_events * n)
            await wait_quiet(args.quiet_wait, say)
            r = _account(await run_saturation(pub, subs, n, acks, args.warmup, args.duration, window,
                                              args.max_inflight, pid))
            result["phases"][f"saturation_{n}"] = r
            say(f"  {r['deliveries_per_s']:,} deliveries/s, {r['server_cpu_us_per_delivery']} us CPU/delivery, "
                f"server {r['server_cpu_cores']} cores, subscribers {r['subscriber_cpu_cores']} cores"
                + (f"; DISTURBED: {r['machine']['other_cores']} cores used by other work" if r["disturbed"] else ""))
            if n != args.paced_subscribers:
                await subs.stop()
                client_total += subs.final_total
                subs = None
        n = args.paced_subscribers
        if subs is None or subs.n != n:
            if subs is not None:
                await subs.stop()
                client_total += subs.final_total
            subs = Subscribers(url, n, args.sub_procs, args.sample_every)
            await subs.start()
        for rate in args.paced_rates:
            say(f"paced {rate:g} msgs/s to {n} subscribers: {args.warmup:g}+{args.duration:g} s")
            await wait_quiet(args.quiet_wait, say)
            r = _account(await run_paced(pub, subs, n, rate, args.warmup, args.duration, pid))
            result["phases"][f"paced_{int(rate * n)}"] = r
            lat = r["latency_ms"]
            say(f"  delivered/offered {r['delivered_over_offered']}, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
                f"max {lat['max']} ms" + (f"; DISTURBED: {r['machine']['other_cores']} cores used by other work"
                                          if r["disturbed"] else ""))
        await subs.stop()
        client_total += subs.final_total
        subs = None
        result["server_rss_bytes"] = proc_rss_bytes(pid)
        result["event_frames_counted_by_clients"] = client_total
        result["metrics"] = _trim_metrics(server.metrics())
        result["publisher"] = {"published": pub.seq, "acks": pub.acks, "errors": pub.errors,
                               "error_samples": pub.error_samples}
        result["server_alive_at_end"] = server.alive()
    except BaseException as exc:
        result["error"] = repr(exc)
        result["server_log_tail"] = server.log_tail()
        say(f"FAILED: {exc!r}\n{server.log_tail()}")
        if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            raise
    finally:
        pub.close()
        if subs is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(subs.stop(), 10)
            subs.kill()
        try:
            await asyncio.sleep(0.1)  # let the publisher's socket close before the server drains
            result["exit_code"], result["stop_s"] = await server.stop()
        finally:
            server.kill()
    return result


def _trim_metrics(m: dict[str, Any] | None) -> dict[str, Any] | None:
    if not m or "error" in m:
        return m
    keep = ("activeConnections", "totalConnections", "eventsAccepted", "deliveries", "dropped", "errorCount",
            "parseErrors", "backpressureNotices", "slowConsumerCloses", "queuedBytes", "hotTierRows",
            "hotTierBytes", "latencyP50", "latencyP99", "process")
    return {k: m.get(k) for k in keep}


# ----------------------------------------------------------------------------- report

def machine_info() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import picows
    import websockets
    versions = {"python": platform.python_version(), "picows": getattr(picows, "__version__", "?"),
                "websockets": websockets.__version__}
    with contextlib.suppress(Exception):
        import uvloop
        versions["uvloop"] = uvloop.__version__
    with contextlib.suppress(Exception):
        import unified_events
        versions["unified_events"] = getattr(unified_events, "__version__", "?")
    versions.update(extension_build())
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model, "memory": mem, "kernel": platform.release(),
            **versions}


def extension_build() -> dict[str, str]:
    """Which `unified_events._core` the server will load (same sys.path as here) and whether it
    is a debug build: Rust debug builds keep `ub_checks`/`precondition_check` symbols, release
    builds compile them out. A debug build is several times slower in the core."""
    try:
        import unified_events._core as core
    except Exception as exc:
        return {"extension": f"not importable: {exc!r}", "extension_build": "unknown"}
    path = core.__file__ or ""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return {"extension": path, "extension_build": "unknown"}
    debug = b"precondition_check" in data or b"ub_checks" in data
    kind = "DEBUG (make build-dev)" if debug else "release"
    return {"extension": path, "extension_build": kind, "extension_size_bytes": str(len(data))}


def fmt(v: Any, spec: str = ",") -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and spec == ",":
        return f"{v:,.2f}"
    return format(v, spec)


def table(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    u = results["servers"].get("unified", {}).get("phases", {})
    b = results["servers"].get("baseline", {}).get("phases", {})
    rows: list[tuple[str, Any, Any, str]] = []  # (label, unified, baseline, ratio-kind)

    def get(p: dict[str, Any], phase: str, *keys: str) -> Any:
        v: Any = p.get(phase)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    for n in args.sat_subscribers:
        ph = f"saturation_{n}"
        rows.append((f"saturation {n} subs: deliveries/s", get(u, ph, "deliveries_per_s"), get(b, ph, "deliveries_per_s"), "x"))
        rows.append((f"saturation {n} subs: server CPU us/delivery", get(u, ph, "server_cpu_us_per_delivery"),
                     get(b, ph, "server_cpu_us_per_delivery"), "x"))
        rows.append((f"saturation {n} subs: server cores used", get(u, ph, "server_cpu_cores"), get(b, ph, "server_cpu_cores"), ""))
        rows.append((f"saturation {n} subs: subscriber cores used", get(u, ph, "subscriber_cpu_cores"),
                     get(b, ph, "subscriber_cpu_cores"), ""))
        rows.append((f"saturation {n} subs: p50 / p99 ms (queueing)",
                     _pair(get(u, ph, "latency_ms", "p50"), get(u, ph, "latency_ms", "p99")),
                     _pair(get(b, ph, "latency_ms", "p50"), get(b, ph, "latency_ms", "p99")), ""))
    for rate in args.paced_rates:
        ph = f"paced_{int(rate * args.paced_subscribers)}"
        label = f"paced {int(rate * args.paced_subscribers / 1000)}k/s ({rate:g} msg/s x {args.paced_subscribers})"
        rows.append((f"{label}: delivered/offered", get(u, ph, "delivered_over_offered"), get(b, ph, "delivered_over_offered"), ""))
        for q in ("p50", "p99", "max"):
            rows.append((f"{label}: {q} ms", get(u, ph, "latency_ms", q), get(b, ph, "latency_ms", q), "x"))
        rows.append((f"{label}: server CPU us/delivery", get(u, ph, "server_cpu_us_per_delivery"),
                     get(b, ph, "server_cpu_us_per_delivery"), "x"))
    out = ["| measurement | unified-events | baseline (websockets) | unified / baseline |", "|---|---:|---:|---:|"]
    for label, uv, bv, kind in rows:
        ratio = "-"
        if kind == "x" and isinstance(uv, (int, float)) and isinstance(bv, (int, float)) and bv:
            ratio = f"{uv / bv:.2f}x"
        out.append(f"| {label} | {fmt(uv)} | {fmt(bv)} | {ratio} |")
    return out


def cpu_table(results: dict[str, Any]) -> list[str]:
    """Where the CPU went in each measured window (cores; the machine has nproc of them)."""
    out = ["| server | phase | server | subscribers | publisher | kernel threads | machine busy | of which softirq | not this benchmark |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results["servers"].items():
        for phase, p in r.get("phases", {}).items():
            m = p.get("machine", {})
            out.append(f"| {name} | {phase} | {fmt(p.get('server_cpu_cores'))} | {fmt(p.get('subscriber_cpu_cores'))} | "
                       f"{fmt(p.get('publisher_cpu_cores'))} | {fmt(m.get('kernel_threads_cores'))} | {fmt(m.get('busy_cores'))} | {fmt(m.get('softirq_cores'))} | "
                       f"{fmt(m.get('other_cores'))}{' (disturbed)' if p.get('disturbed') else ''} |")
    return out


def _pair(a: Any, b: Any) -> str | None:
    return None if a is None and b is None else f"{fmt(a)} / {fmt(b)}"


def targets(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    u = results["servers"].get("unified", {}).get("phases", {})
    b = results["servers"].get("baseline", {}).get("phases", {})
    lines = []
    ud = (u.get("saturation_1000") or {}).get("deliveries_per_s")
    bd = (b.get("saturation_1000") or {}).get("deliveries_per_s")
    if ud and bd:
        lines.append(f"- >= 3x baseline deliveries/s at 1000 subscribers: {ud / bd:.2f}x -> {'MET' if ud >= 3 * bd else 'NOT MET'}")
    cpus = {n: (u.get(f"saturation_{n}") or {}).get("server_cpu_us_per_delivery") for n in args.sat_subscribers}
    if all(v is not None for v in cpus.values()) and cpus:
        worst = max(cpus.values())
        lines.append("- <= 1 us server CPU per delivery at saturation: "
                     + ", ".join(f"{n} subs {v} us" for n, v in cpus.items())
                     + f" -> {'MET' if worst <= 1.0 else 'NOT MET'}")
    p = u.get(f"paced_{100 * args.paced_subscribers}") if 100 in args.paced_rates else None
    if p:
        p99 = p["latency_ms"]["p99"]
        ok = p99 is not None and p99 < 50 and (p["delivered_over_offered"] or 0) >= 0.99
        lines.append(f"- p99 < 50 ms at 100k deliveries/s offered to 1000 subscribers: p99 {p99} ms, "
                     f"delivered/offered {p['delivered_over_offered']} -> {'MET' if ok else 'NOT MET'}")
    return lines


# ----------------------------------------------------------------------------- main

async def amain(args: argparse.Namespace) -> dict[str, Any]:
    started = dt.datetime.now().astimezone()
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "servers": {},
    }
    with tempfile.TemporaryDirectory(prefix="ue-fanout-") as tmpdir:
        for name in args.servers:
            print(f"== {name}", flush=True)
            results["servers"][name] = await bench_server(name, args, Path(tmpdir))
    results["elapsed_s"] = round((dt.datetime.now().astimezone() - started).total_seconds(), 1)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="unified-events fan-out benchmark (vs a websockets baseline)")
    parser.add_argument("--quick", action="store_true", help="3 s windows instead of 8 s")
    parser.add_argument("--json", help="write the results here (default bench/results/fanout-<date>.json)")
    parser.add_argument("--servers", default="unified,baseline", help="comma list: unified,baseline")
    parser.add_argument("--duration", type=float, help="measurement window per phase, s (default 8, quick 3)")
    parser.add_argument("--warmup", type=float, help="warm-up before each window, s (default 1.5, quick 1)")
    parser.add_argument("--sub-procs", type=int, default=1, help="subscriber processes (default 1)")
    parser.add_argument("--sample-every", type=int, default=10,
                        help="parse latency on every frame of every k-th connection (default 10)")
    parser.add_argument("--window-events", type=int, default=64,
                        help="saturation: events outstanding per subscriber (published - received), default 64")
    parser.add_argument("--min-window", type=int, default=16384,
                        help="saturation: but at least this many deliveries outstanding in all, default 16384")
    parser.add_argument("--max-inflight", type=int, default=256, help="saturation: max un-acked publishes (unified)")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before each phase wait up to this long for other work on the machine to stop (s)")
    parser.add_argument("--sat-subscribers", default="100,1000")
    parser.add_argument("--paced-subscribers", type=int, default=1000)
    parser.add_argument("--paced-rates", default="50,100", help="msgs/s offered in the paced phases")
    args = parser.parse_args()
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in args.servers:
        if s not in ("unified", "baseline"):
            parser.error(f"unknown server {s!r}")
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.warmup = args.warmup or (1.0 if args.quick else 1.5)
    args.sat_subscribers = [int(x) for x in args.sat_subscribers.split(",") if x]
    args.paced_rates = [float(x) for x in args.paced_rates.split(",") if x]

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    import uvloop
    results = uvloop.run(amain(args))

    mi = results["machine"]
    lines = [f"fan-out benchmark, {results['date']}, {results['elapsed_s']} s; "
             f"{mi['nproc']} cores ({mi['cpu_model']}), server and load share them",
             f"unified_events._core: {mi.get('extension')} ({mi.get('extension_build')})", ""]
    if "unified" in args.servers and mi.get("extension_build", "").startswith("DEBUG"):
        lines.insert(0, "WARNING: the Rust extension is a debug build: unified-events numbers are not representative "
                        "(run `make build-prod` first)\n")
    lines += table(results, args)
    lines += ["", "CPU by process in each window (cores):"] + cpu_table(results)
    disturbed = [f"{name}/{phase} ({p['machine']['other_cores']} cores)" for name, r in results["servers"].items()
                 for phase, p in r.get("phases", {}).items() if p.get("disturbed")]
    if disturbed:
        lines += ["", "NOTE: other work used the machine during: " + ", ".join(disturbed)
                  + ". Those numbers are low; re-run on a quiet machine."]
    lines += ["", "targets (unified-events):"] + (targets(results, args) or ["- (not enough data)"])
    for name, r in results["servers"].items():
        if "error" in r:
            lines.append(f"!! {name}: {r['error']}")
        m = r.get("metrics")
        if m and "dropped" in m:
            lines.append(f"{name} /metrics: deliveries {m.get('deliveries')} (clients counted "
                         f"{r.get('event_frames_counted_by_clients')}), dropped {m.get('dropped')}, "
                         f"errors {m.get('errorCount')}, slow-consumer closes {m.get('slowConsumerCloses')}")
        pubr = r.get("publisher")
        if pubr and pubr.get("errors"):
            lines.append(f"{name} publisher got {pubr['errors']} error frames, e.g. {pubr['error_samples'][:2]}")
    print("\n".join(lines))
    results["table_markdown"] = table(results, args)
    results["cpu_table_markdown"] = cpu_table(results)
    results["targets"] = targets(results, args)

    out = Path(args.json) if args.json else BENCH_DIR / "results" / f"fanout-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {out}")
    return 1 if any("error" in r for r in results["servers"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
