"""`unified-events query` against a real server, and `EventStream.query` in process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.conftest import Server
from unified_events import EventStream, EventValidationError


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unified_events.cli", "query", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_a_table_and_json(server: Server) -> None:
    server.broadcast("cli.topic", {"id": "cli-1", "type": "t", "payload": {"note": "hello"}})
    server.broadcast("cli.topic", {"id": "cli-2", "type": "t"})
    sql = "SELECT id, payload->>'note' AS note FROM events WHERE topic = $1 ORDER BY id"
    done = cli(sql, "--param", "cli.topic", "--url", server.http_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["id", "|", "note"]
    assert lines[2].split() == ["cli-1", "|", "hello"] and lines[3].split() == ["cli-2", "|", "NULL"]
    assert lines[-1].startswith("(2 rows,")
    done = cli("SELECT count(*) FROM events WHERE topic = $1", "--param", '"cli.topic"', "--json",
               "--url", server.http_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == [{"count": 2}]


def test_cli_reports_refusals_and_unreachable_servers(server: Server) -> None:
    done = cli("DROP TABLE events", "--url", server.http_url)
    assert done.returncode == 1 and "DROP statements are not allowed" in done.stderr
    done = cli("SELECT 1", "--url", "http://127.0.0.1:1")
    assert done.returncode == 1 and "cannot reach" in done.stderr


async def _embedded() -> None:
    stream = EventStream()
    await stream.start()
    await stream.publish({"event_type": "trace", "event_name": "q", "ns": "emb", "trace_id": "t-1",
                          "duration_ms": 12.5})
    result = await stream.query("SELECT trace_id, duration_ms FROM traces WHERE ns = $1", ["emb"])
    assert result["rows"] == [{"trace_id": "t-1", "duration_ms": 12.5}]
    assert result["columns"] == ["trace_id", "duration_ms"] and result["row_count"] == 1
    with pytest.raises(EventValidationError, match="DELETE"):
        await stream.query("DELETE FROM events")
    await stream.stop()


def test_event_stream_query() -> None:
    asyncio.run(_embedded())
