"""SQL over the hot tier: query latency with 1M events, snapshot cost, memory, and fan-out latency
while heavy queries run. In process (EventStream + in-process subscribers), release build.

    make build-prod && .venv/bin/python bench/sql_query.py            # 1M events, ~2-4 min
    .venv/bin/python bench/sql_query.py --events 200000 --runs 50     # quicker
    .venv/bin/python bench/sql_query.py --baseline main               # side by side with main's sql/

With --baseline REV, the sql/ package of git revision REV runs on the same hot tier in the same
process (queries interleaved, fan-out windows alternated), so before/after share the machine's load.

Reports p50/p99 of (a) a trace_id filter (a point lookup, answered without DuckDB; also the same
rows with ORDER BY, through DuckDB) and (b) GROUP BY service_name with approx_quantile, each
through the whole POST /query path minus HTTP (validate, snapshot, DuckDB, JSON rows);
the snapshot alone; RSS per event; and publish->receive latency of an in-process subscriber,
idle and while (b) runs back to back on the SQL worker.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import pyarrow as pa

from unified_events import Config, EventStream
from unified_events.config import QueryConfig

SERVICES = [f"svc-{i}" for i in range(20)]
FILTER_SQL = "SELECT * FROM events WHERE trace_id = $1"
# The same rows through DuckDB: ORDER BY takes it out of the point-lookup shape (sql/point.py).
FILTER_DUCKDB_SQL = FILTER_SQL + " ORDER BY seq"
GROUP_SQL = ("SELECT service_name, approx_quantile(duration_ms, 0.95) AS p95, count(*) AS n "
             "FROM events GROUP BY service_name")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": pct(samples, 0.50), "p99": pct(samples, 0.99), "mean": round(statistics.fmean(samples), 3),
            "n": len(samples)}


def event(i: int, rng: random.Random) -> dict[str, Any]:
    """A ~300-byte trace event, like the fan-out bench's."""
    return {
        "id": f"ev-{i}", "event_type": "trace", "event_name": "http.request", "ns": "bench.app",
        "trace_id": f"trace-{rng.randrange(200_000)}", "span_id": f"span-{i}", "session_id": f"s-{i % 5000}",
        "service_name": rng.choice(SERVICES), "duration_ms": round(rng.expovariate(1 / 40), 2),
        "http_status": rng.choice((200, 200, 200, 201, 404, 500)), "http_method": "GET",
        "http_url": f"https://api.example.com/items/{i % 1000}", "outcome": "success",
        "data": {"n": i, "pad": "x" * 40},
    }


async def fill(stream: EventStream, n: int) -> float:
    rng = random.Random(7)
    started = time.perf_counter()
    for base in range(0, n, 1000):
        await stream.publish_many([event(i, rng) for i in range(base, min(n, base + 1000))])
    return time.perf_counter() - started


def baseline_engine(rev: str, stream: EventStream) -> Any:
    """An SqlEngine built from the sql/ package of git revision `rev`, over the same hot tier."""
    root = Path(__file__).resolve().parent.parent
    pkg_dir = Path(tempfile.mkdtemp(prefix="ue-sql-baseline-"))
    for name in ("__init__", "engine", "validate", "pushdown"):
        text = subprocess.run(["git", "-C", str(root), "show", f"{rev}:python/unified_events/sql/{name}.py"],
                              check=True, capture_output=True, text=True).stdout
        (pkg_dir / f"{name}.py").write_text(text)
    package = types.ModuleType("unified_events._sql_baseline")
    package.__path__ = [str(pkg_dir)]
    sys.modules[package.__name__] = package
    engine = importlib.import_module("unified_events._sql_baseline.engine")
    q = stream.config.query
    # A baseline from before `ArrowSegments` expects the list shape of `arrow_segments()`.
    hot = stream.hot if hasattr(engine, "ArrowSegments") else _ListSegments(stream.hot)
    return engine.SqlEngine(hot, q.timeout_ms, q.max_rows, q.memory_limit_mb, q.threads, q.max_waiting,
                            q.worker_nice)


class _ListSegments:
    """The hot tier as a baseline from before `ArrowSegments` sees it: `arrow_segments()` as a list of
    (first seq, live rows, frozen, rows). Building the list here costs the baseline about what the
    old Rust call did (a Python object per segment)."""

    def __init__(self, hot: Any) -> None:
        self._hot = hot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hot, name)

    def arrow_segments(self) -> list[tuple[int, int, bool, Any]]:
        segments = self._hot.arrow_segments()
        head, open_rows = segments.head(), segments.open()
        out = [(-2, head.num_rows, False, head)] if head.num_rows else []
        out += [(first, live, True, segments.frozen(i)) for i, (first, live) in enumerate(segments.frozen_keys())]
        if open_rows.num_rows:
            out.append((-1, open_rows.num_rows, False, open_rows))
        return out


def worker_snapshot_work(engine: Any, segments: Any) -> None:
    """What an engine's worker does with a full snapshot before DuckDB runs (GIL held): this code
    and recent baselines expose it to the connection, older ones built a pyarrow Table."""
    if hasattr(engine, "_expose"):
        engine._expose(engine._connection(), segments)
    else:
        engine._table(segments)


async def timed(engine: Any, sql: str, params: list[Any]) -> float:
    t0 = time.perf_counter()
    await engine.run(sql, params)
    return (time.perf_counter() - t0) * 1000


async def busy_fanout(stream: EventStream, engine: Any, seconds: float, rate: int) -> tuple[list[float], int]:
    """Fan-out latency while `engine` runs (b) back to back; and how many (b) ran."""
    busy_flag = True

    async def heavy() -> int:
        n = 0
        while busy_flag:
            await engine.run(GROUP_SQL, [])
            n += 1
        return n

    heavy_task = asyncio.create_task(heavy())
    await asyncio.sleep(0.05)
    busy = await fanout_latency(stream, seconds, rate)
    busy_flag = False
    return busy, await heavy_task


def native_group_by(hot: Any, runs: int) -> dict[str, float]:
    """Reference for (b): the same GROUP BY on a DuckDB-native table of the same rows, same thread
    count, no snapshot and no JSON: what DuckDB itself costs on this machine right now."""
    import duckdb

    con = duckdb.connect(":memory:", config={"threads": 1})
    con.register("src", pa.table(hot.arrow_snapshot()))
    con.execute("CREATE TABLE events AS SELECT service_name, duration_ms FROM src")
    con.unregister("src")
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        con.execute(GROUP_SQL).fetchall()
        samples.append((time.perf_counter() - t0) * 1000)
    con.close()
    return summary(samples)


async def fanout_latency(stream: EventStream, seconds: float, rate: int) -> list[float]:
    """Publish `rate` events/s to one in-process subscriber; latency publish -> consumer (ms)."""
    latencies: list[float] = []
    sent: dict[str, float] = {}

    async def consume() -> None:
        async for frame in stream.subscribe("lat.probe"):
            t = sent.pop(frame["id"], None)
            if t is not None:
                latencies.append((time.perf_counter() - t) * 1000)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        key = f"lat-{time.perf_counter_ns()}-{i}"
        sent[key] = time.perf_counter()
        await stream.publish({"id": key, "type": "probe"}, topic="lat.probe")
        i += 1
        await asyncio.sleep(1 / rate)
    await asyncio.sleep(0.2)
    consumer.cancel()
    return latencies


async def main(args: argparse.Namespace) -> dict[str, Any]:
    config = Config(hot_tier_max_bytes=16 << 30, hot_tier_retention_ms=24 * 3600 * 1000,
                    dedup_max_entries=2_000_000, query=QueryConfig(timeout_ms=60_000))
    stream = EventStream(config)
    await stream.start()
    rss0 = rss_mb()
    fill_s = await fill(stream, args.events)
    rss1 = rss_mb()
    hot = stream.hot
    out: dict[str, Any] = {
        "events": len(hot), "fill_s": round(fill_s, 1),
        "rss_mb_before": round(rss0), "rss_mb_after": round(rss1),
        "rss_bytes_per_event": round((rss1 - rss0) * 1024 * 1024 / args.events),
        "hot_bytes_used_per_event": round(hot.bytes_used / args.events),
    }
    await stream.sql.run("SELECT 1", [])  # create the DuckDB connection (and the segment cache)
    engine = stream.sql
    seg_ms, cold_ms, warm_ms = [], [], []
    # Each in its own loop: freeing the previous round's uncached import (thousands of pyarrow
    # objects) inside the snapshot's timing window made it read 10-25 ms instead of ~0.1 ms.
    for _ in range(args.runs):
        t0 = time.perf_counter()
        segments = hot.arrow_segments()  # what a query takes on the loop thread
        seg_ms.append((time.perf_counter() - t0) * 1000)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        worker_snapshot_work(engine, hot.arrow_segments())  # frozen segments from the cache
        warm_ms.append((time.perf_counter() - t0) * 1000)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        pa.table(hot.arrow_snapshot())  # the same without the cache: every segment imported
        cold_ms.append((time.perf_counter() - t0) * 1000)
    out["arrow_bytes_per_event"] = round(hot.arrow_snapshot().nbytes / args.events)
    out["snapshot_on_loop_ms"] = summary(seg_ms)
    out["worker_snapshot_cached_ms"] = summary(warm_ms)
    out["to_pyarrow_uncached_ms"] = summary(cold_ms)
    engines = {"": stream.sql}
    if args.baseline:
        engines["baseline_"] = baseline_engine(args.baseline, stream)
        await engines["baseline_"].run("SELECT 1", [])
    for threads in args.also_threads:  # this code with another DuckDB thread count
        q = stream.config.query
        engines[f"threads{threads}_"] = type(stream.sql)(hot, q.timeout_ms, q.max_rows, q.memory_limit_mb, threads,
                                                         q.max_waiting, q.worker_nice)
    for engine in engines.values():  # warm: segment caches, query caches
        await engine.run(FILTER_SQL, ["trace-1"])
        await engine.run(GROUP_SQL, [])
    if len(engines) > 1:  # the worker-side snapshot work (GIL held) of each engine, interleaved
        table_ms: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(args.runs):
            for k, engine in engines.items():
                segments = engine.hot.arrow_segments()  # in the shape this engine's code expects
                t0 = time.perf_counter()
                worker_snapshot_work(engine, segments)
                table_ms[k].append((time.perf_counter() - t0) * 1000)
        for k in engines:
            out[f"{k}worker_snapshot_cached_interleaved_ms"] = summary(table_ms[k])
    traces = [f"trace-{i}" for i in random.Random(1).sample(range(200_000), args.runs)]
    filter_ms: dict[str, list[float]] = {k: [] for k in engines}
    duckdb_filter_ms: dict[str, list[float]] = {k: [] for k in engines}
    for trace in traces:  # interleaved, so both see the same load
        for k, engine in engines.items():
            filter_ms[k].append(await timed(engine, FILTER_SQL, [trace]))
            duckdb_filter_ms[k].append(await timed(engine, FILTER_DUCKDB_SQL, [trace]))
    group_ms: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(max(10, args.runs // 2)):
        for k, engine in engines.items():
            group_ms[k].append(await timed(engine, GROUP_SQL, []))
    for k in engines:
        out[f"{k}a_trace_filter_ms"] = summary(filter_ms[k])
        out[f"{k}a_trace_filter_through_duckdb_ms"] = summary(duckdb_filter_ms[k])
        out[f"{k}b_group_by_p95_ms"] = summary(group_ms[k])
    out["b_same_query_native_duckdb_table_ms"] = native_group_by(hot, max(10, args.runs // 2))

    # Fan-out: idle, then busy with each engine, alternated over `rounds` windows each.
    idle: list[float] = []
    busy: dict[str, list[float]] = {k: [] for k in engines}
    heavy_n: dict[str, int] = {k: 0 for k in engines}
    window = args.latency_s / args.rounds
    for _ in range(args.rounds):
        idle += await fanout_latency(stream, window, args.rate)
        for k, engine in engines.items():
            lat, n = await busy_fanout(stream, engine, window, args.rate)
            busy[k] += lat
            heavy_n[k] += n
    out["fanout_latency_idle_ms"] = summary(idle)
    for k in engines:
        out[f"{k}heavy_queries_during_busy_window"] = heavy_n[k]
        out[f"{k}fanout_latency_during_queries_ms"] = summary(busy[k])
        out[f"{k}fanout_p99_ratio_busy_over_idle"] = round(pct(busy[k], 0.99) / max(pct(idle, 0.99), 1e-9), 2)
    out["engines"] = {k or "this": v.threads for k, v in engines.items()}
    if args.baseline:
        out["baseline"] = args.baseline
    for k, engine in engines.items():
        if k:
            engine.close()
    await stream.stop(drain_timeout_ms=0)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100, help="timed runs of each query and of the snapshot")
    parser.add_argument("--latency-s", type=float, default=8.0, help="seconds of each fan-out latency window")
    parser.add_argument("--rate", type=int, default=500, help="probe events per second in the latency windows")
    parser.add_argument("--rounds", type=int, default=1,
                        help="split each fan-out window into this many, alternating idle and busy")
    parser.add_argument("--baseline", help="git revision whose sql/ package runs side by side (see above)")
    parser.add_argument("--also-threads", type=int, action="append", default=[],
                        help="also run this code with this DuckDB thread count, side by side")
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(main(args))
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result, indent=2))
