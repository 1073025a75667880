"""The archiver end to end: real `unified-events archive` processes, a real SQLite catalog and warehouse."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from tests.cold.util import (
    append_events, cli, cold_settings, config_file, read_dead, read_table, spawn_archiver, unified,
)
from unified_events.cold.catalog import open_catalog
from unified_events.cold.schema import POSITION_PROPERTY, TABLE_NAME
from unified_events.config import load_config
from unified_events.stream import EventStream


def test_archive_and_read_back(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    bodies = [unified(i, http_status=200 + i, duration_ms=1.5, data={"i": i}, timestamp_ns=str(10**18 + i),
                      is_root=True, timestamp="2024-01-15T10:20:30.123Z") for i in range(300)]
    bodies.append({"event_type": "log", "event_name": "app.log", "ns": "https://api.example.com",
                   "id": "url-ns", "log_level": "error", "attributes": {"k": ["v"]}, "resource_id": "r1",
                   "timestamp": 1705314000000})
    bodies.append({"topic": "chat.room1", "event": {"id": "legacy-1", "type": "message", "payload": {"text": "hi"},
                                                    "timestamp": 1705314000000}})
    append_events(source, bodies)

    out = cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json")
    summary = json.loads(out.stdout)
    assert summary["rows"] == 302 and summary["position"] == 302 and summary["dead_letters"] == 0

    table = read_table(settings)
    assert table.num_rows == 302
    assert len(table.schema) == 175
    rows = {r["id"]: r for r in table.to_pylist()}
    first = rows["ev-7"]
    assert first["http_status"] == 207 and first["timestamp_ns"] == 10**18 + 7 and first["is_root"] is True
    assert json.loads(first["data"]) == {"i": 7}
    assert first["timestamp"] == datetime(2024, 1, 15, 10, 20, 30, 123000, tzinfo=timezone.utc)
    assert str(first["day"]) == "2024-01-15" and first["hour"] == 10
    assert first["visibility"] == "user" and first["schema_version"] == 1 and first["resource_ns"] == "tenant-1"
    url = rows["url-ns"]
    assert url["ns"] == "https://api.example.com" and url["resource_id"] == "https://api.example.com/r1"
    assert json.loads(url["attributes"]) == {"k": ["v"]}
    legacy = rows["legacy-1"]
    assert (legacy["event_type"], legacy["event_name"], legacy["ns"], legacy["event_source"]) == \
        ("message", "message", "chat.room1", "legacy")
    assert json.loads(legacy["data"]) == {"text": "hi"}

    # Partitioned by day(timestamp), event_type, ns; Parquet with zstd; position in the summary.
    cfg = load_config(None, overrides=settings)
    tbl = open_catalog(cfg).load_table((cfg.cold.namespace, TABLE_NAME))
    assert [f.name for f in tbl.spec().fields] == ["timestamp_day", "event_type", "ns"]
    files = tbl.inspect.files().to_pylist()
    assert len(files) == 5  # tenant-0..2 traces, the log, the legacy message
    meta = pq.ParquetFile(files[0]["file_path"].removeprefix("file://")).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert tbl.current_snapshot().summary.additional_properties[POSITION_PROPERTY] == "302"
    position = json.loads((tmp_path / "data" / "archiver" / "position.json").read_text())
    assert position["position"] == 302 and position["committed_at_ms"] > 0


def test_dead_letter_keeps_the_rest_of_the_batch(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(0), unified(1, depth="very deep"), "{not json", unified(3, timestamp=10**17),
                           unified(4, http_status=1 << 70), unified(5)])
    summary = json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)
    assert summary["rows"] == 2 and summary["dead_letters"] == 4 and summary["position"] == 6

    assert sorted(read_table(settings).column("id").to_pylist()) == ["ev-0", "ev-5"]
    dead = sorted(read_dead(settings).to_pylist(), key=lambda r: r["log_position"])
    assert [d["log_position"] for d in dead] == [2, 3, 4, 5]
    assert "column depth" in dead[0]["reason"] and dead[0]["id"] == "ev-1"
    assert "cannot decode" in dead[1]["reason"] and dead[1]["payload"] == "{not json"
    assert "column timestamp" in dead[2]["reason"]
    assert "column http_status" in dead[3]["reason"] and "64-bit" in dead[3]["reason"]

    # Run again: nothing is written twice, not even dead letters.
    summary = json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)
    assert summary["rows"] == 0 and summary["commits"] == 0
    assert read_dead(settings).num_rows == 4


def test_resume_after_restart_without_duplicates(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i) for i in range(500)])
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")
    append_events(source, [unified(i) for i in range(500, 800)])
    summary = json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)
    assert summary["rows"] == 300 and summary["position"] == 800
    ids = read_table(settings).column("id").to_pylist()
    assert len(ids) == 800 and len(set(ids)) == 800


def test_sigkill_archiver_at_random_moments_every_event_exactly_once(tmp_path: Path) -> None:
    """A writer appends events while the archiver is SIGKILLed at random moments and restarted."""
    settings = cold_settings(tmp_path, batch_rows=300, flush_interval_s=0.2)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    log_path = tmp_path / "archiver.log"
    rng = random.Random(4)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set() and written[0] < 20_000:
            n = rng.randint(20, 100)
            append_events(source, [unified(written[0] + i) for i in range(n)])
            written[0] += n
            time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    kills = 0
    while kills < 4:
        commits_before = log_path.read_text().count("archiver: committed") if log_path.exists() else 0
        archiver = spawn_archiver(config, source, log_path)
        # Start-up (imports, catalog) takes seconds on a busy machine: wait for this run's first
        # commit, then kill at a random moment of its work (reading, converting, mid-commit...).
        deadline = time.monotonic() + 30
        while log_path.read_text().count("archiver: committed") == commits_before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        archiver.send_signal(signal.SIGKILL)
        archiver.wait()
        kills += 1
    stop.set()
    thread.join()
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")  # drain what is left

    ids = read_table(settings).column("id").to_pylist()
    counts = collections.Counter(ids)
    assert [i for i, n in counts.items() if n > 1] == [], "duplicates after SIGKILL"
    assert set(ids) == {f"ev-{i}" for i in range(written[0])}, "events lost after SIGKILL"
    assert log_path.read_text().count("archiver: committed") >= 4  # every killed archiver had committed


def test_cold_query_command(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i, duration_ms=float(i), timestamp="2024-01-15T00:00:00Z") for i in range(90)]
                  + [unified(i, duration_ms=1.0, timestamp="2024-01-16T00:00:00Z") for i in range(90, 99)])
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")

    out = cli(config, "cold-query", "--json", "--explain",
              "SELECT ns, count(*) AS n, max(duration_ms) AS top FROM unified_events "
              "WHERE day = '2024-01-15' AND ns IN ('tenant-0', 'tenant-1') GROUP BY ns ORDER BY ns")
    assert json.loads(out.stdout) == [{"ns": "tenant-0", "n": 30, "top": 87.0}, {"ns": "tenant-1", "n": 30, "top": 88.0}]
    assert "scan: 2 files" in out.stderr  # one day, two tenants of the six partitions

    text = cli(config, "cold-query", "SELECT count(*) AS n FROM events").stdout
    assert "99" in text and "(1 row)" in text
    # The same from Python, embedded: EventStream.cold_query runs in a worker thread.
    stream = EventStream(load_config(None, overrides=settings))
    rows = asyncio.run(stream.cold_query("SELECT count(*) AS n FROM events WHERE ns = 'tenant-2'"))
    assert rows == [{"n": 33}]

    bad = cli(config, "cold-query", "DELETE FROM events", check=False)
    assert bad.returncode == 2 and "only SELECT" in bad.stderr
    bad = cli(config, "cold-query", "SELECT * FROM read_parquet('/etc/passwd')", check=False)
    assert bad.returncode == 2


def test_commit_failures_are_retried_and_reported(tmp_path: Path) -> None:
    """The SQLite catalog is write-locked by another connection: commits fail ("database is
    locked"), the archiver reports the error and retries with backoff; once the lock is gone the
    batch lands, once."""
    import sqlite3

    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i) for i in range(50)])
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")  # creates the tables

    blocker = sqlite3.connect(tmp_path / "data" / "cold" / "catalog.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # readers may go on, writers wait and then fail
    append_events(source, [unified(i) for i in range(50, 120)])
    archiver = spawn_archiver(config, source, tmp_path / "archiver.log")
    status_path = tmp_path / "data" / "archiver" / "status.json"
    try:
        deadline = time.monotonic() + 60
        status: dict = {}
        while time.monotonic() < deadline and not status.get("errors_total"):
            time.sleep(0.2)
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                pass
        assert status.get("errors_total", 0) >= 1, (tmp_path / "archiver.log").read_text()
        assert "locked" in status["last_error"] and status["position"] == 50
        blocker.execute("ROLLBACK")
        while time.monotonic() < deadline and json.loads(status_path.read_text())["position"] != 120:
            time.sleep(0.2)
        assert json.loads(status_path.read_text())["position"] == 120
    finally:
        blocker.close()
        archiver.send_signal(signal.SIGTERM)
        archiver.wait(timeout=30)
    ids = read_table(settings).column("id").to_pylist()
    assert sorted(ids) == sorted(f"ev-{i}" for i in range(120))
