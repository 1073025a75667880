"""The SQL worker and DuckDB's own threads yield the CPU to the event loop (query.worker_nice),
which is what lets `query.threads` default to 2 without slowing fan-out (bench/README.md, SQL)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from unified_events import Config, EventStream
from unified_events.config import QueryConfig

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="niceness per thread is read from /proc (Linux)")


def _niceness_by_thread() -> dict[int, int]:
    out = {}
    for task in Path("/proc/self/task").iterdir():
        stat = (task / "stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        out[int(task.name)] = int(fields[16])  # field 19 of stat: nice
    return out


def test_duckdb_threads_run_at_the_workers_niceness() -> None:
    async def run() -> dict[int, int]:
        stream = EventStream(Config(query=QueryConfig(threads=2, worker_nice=7)))
        await stream.start()
        try:
            await stream.publish_many([{"event_type": "log", "event_name": "x", "ns": "n", "service_name": f"s{i % 3}"}
                                       for i in range(3000)])
            result = await stream.sql.run("SELECT service_name, count(*) AS n FROM events GROUP BY service_name")
            assert result.row_count == 3
            return _niceness_by_thread()
        finally:
            await stream.stop()

    own = os.getpriority(os.PRIO_PROCESS, 0)
    niceness = asyncio.run(run())
    assert niceness[os.getpid()] == own, "the event loop's thread keeps its priority"
    # the query thread and DuckDB's second thread, started by it
    assert sum(1 for n in niceness.values() if n == own + 7) >= 2, niceness
