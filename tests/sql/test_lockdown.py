"""Defence in depth: what the validator refuses also fails on the locked DuckDB connection itself,
run on the engine's worker thread without validate.py."""

from __future__ import annotations

import asyncio
from typing import Any

import duckdb
import pytest

from unified_events import EventStream

# Reads of files and of the environment, as the engine runs queries (wrapped, over a snapshot).
READS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM '/etc/hostname'",
    "SELECT getenv('HOME')",
]
# Statements, sent to the connection as they are.
STATEMENTS = [
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET memory_limit = '64GB'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH '/tmp/ue-lockdown.db' AS x",
    "COPY (SELECT 1) TO '/tmp/ue-lockdown.csv'",
]


async def _on_worker(call: Any) -> None:
    stream = EventStream()
    await stream.start()
    try:
        engine = stream.sql
        await engine.run("SELECT 1")  # connect and lock the configuration
        await asyncio.get_running_loop().run_in_executor(engine._executor, call, engine)
    finally:
        await stream.stop()


@pytest.mark.parametrize("sql", READS)
def test_reads_outside_the_hot_tier_fail(sql: str) -> None:
    from unified_events.sql.engine import QueryFailed

    with pytest.raises(QueryFailed, match="Permission|does not exist"):
        asyncio.run(_on_worker(lambda engine: engine._execute(sql, [], engine.hot.arrow_snapshot())))


@pytest.mark.parametrize("sql", STATEMENTS)
def test_configuration_and_extensions_are_locked(sql: str) -> None:
    with pytest.raises(duckdb.Error):
        asyncio.run(_on_worker(lambda engine: engine._connection().execute(sql)))
