"""SQL over the hot tier: query latency with 1M events, snapshot cost, memory, and fan-out latency
while heavy queries run. In process (EventStream + in-process subscribers), release build.

    make build-prod && .venv/bin/python bench/sql_query.py            # 1M events, ~2-4 min
    .venv/bin/python bench/sql_query.py --events 200000 --runs 50     # quicker

Reports p50/p99 of (a) a trace_id filter and (b) GROUP BY service_name with approx_quantile,
each through the whole POST /query path minus HTTP (validate, snapshot, DuckDB, JSON rows);
the snapshot alone; RSS per event; and publish->receive latency of an in-process subscriber,
idle and while (b) runs back to back on the SQL worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import statistics
import time
from typing import Any

import pyarrow as pa

from unified_events import Config, EventStream
from unified_events.config import QueryConfig

SERVICES = [f"svc-{i}" for i in range(20)]
FILTER_SQL = "SELECT * FROM events WHERE trace_id = $1"
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


async def timed_queries(stream: EventStream, sql: str, params: list[Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await stream.sql.run(sql, params)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


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
    for _ in range(args.runs):
        t0 = time.perf_counter()
        segments = hot.arrow_segments()  # what a query takes on the loop thread
        t1 = time.perf_counter()
        engine._table(segments)  # pyarrow view, frozen segments from the cache (worker thread)
        t2 = time.perf_counter()
        pa.table(hot.arrow_snapshot())  # the same without the cache: every segment imported
        t3 = time.perf_counter()
        seg_ms.append((t1 - t0) * 1000)
        warm_ms.append((t2 - t1) * 1000)
        cold_ms.append((t3 - t2) * 1000)
    out["arrow_bytes_per_event"] = round(hot.arrow_snapshot().nbytes / args.events)
    out["snapshot_on_loop_ms"] = summary(seg_ms)
    out["to_pyarrow_cached_ms"] = summary(warm_ms)
    out["to_pyarrow_uncached_ms"] = summary(cold_ms)
    traces = [f"trace-{i}" for i in random.Random(1).sample(range(200_000), args.runs)]
    filter_ms = []
    for trace in traces:
        t0 = time.perf_counter()
        await stream.sql.run(FILTER_SQL, [trace])
        filter_ms.append((time.perf_counter() - t0) * 1000)
    out["a_trace_filter_ms"] = summary(filter_ms)
    out["b_group_by_p95_ms"] = summary(await timed_queries(stream, GROUP_SQL, [], max(10, args.runs // 2)))
    out["b_same_query_native_duckdb_table_ms"] = native_group_by(hot, max(10, args.runs // 2))

    idle = await fanout_latency(stream, args.latency_s, args.rate)
    busy_flag = True

    async def heavy() -> int:
        n = 0
        while busy_flag:
            await stream.sql.run(GROUP_SQL, [])
            n += 1
        return n

    heavy_task = asyncio.create_task(heavy())
    await asyncio.sleep(0.05)
    busy = await fanout_latency(stream, args.latency_s, args.rate)
    busy_flag = False
    out["heavy_queries_during_busy_window"] = await heavy_task
    out["fanout_latency_idle_ms"] = summary(idle)
    out["fanout_latency_during_queries_ms"] = summary(busy)
    out["fanout_p99_ratio_busy_over_idle"] = round(pct(busy, 0.99) / max(pct(idle, 0.99), 1e-9), 2)
    await stream.stop(drain_timeout_ms=0)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100, help="timed runs of each query and of the snapshot")
    parser.add_argument("--latency-s", type=float, default=8.0, help="seconds of each fan-out latency window")
    parser.add_argument("--rate", type=int, default=500, help="probe events per second in the latency windows")
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(main(args))
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result, indent=2))
