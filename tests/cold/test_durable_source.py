"""The archiver reading the real durable log (`_core.DurableLog` writes, `_core.LogReader` reads)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from tests.cold.test_fast_convert import raw_event
from tests.cold.util import cli, cold_settings, config_file, read_table, unified
from unified_events import _core
from unified_events.cold.archiver import Archiver, committed_position
from unified_events.cold.catalog import open_tables
from unified_events.cold.source import DurableLogSource
from unified_events.config import load_config
from unified_events.durable import encode
from unified_events.events import parse_body

ACCEPTED_AT_MS = 1_700_000_000_123


def test_archive_from_the_durable_log(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    log = _core.DurableLog(str(tmp_path / "data" / "log"), durability="fsync")
    last = log.append([encode(parse_body(unified(i)), ACCEPTED_AT_MS) for i in range(400)])
    log.wait_durable(last, 5000)

    summary = json.loads(cli(config, "archive", "--once", "--json").stdout)
    assert summary["rows"] == 400 and summary["position"] == last

    last = log.append([encode(parse_body(unified(i)), ACCEPTED_AT_MS) for i in range(400, 450)]
                      + [b"\x09not a record"])
    log.wait_durable(last, 5000)
    log.close()
    summary = json.loads(cli(config, "archive", "--once", "--json").stdout)
    assert summary["rows"] == 50 and summary["dead_letters"] == 1 and summary["position"] == last

    table = read_table(settings)
    ids = table.column("id").to_pylist()
    assert len(ids) == 450 and set(ids) == {f"ev-{i}" for i in range(450)}
    ingested = set(table.column("ingested_at").to_pylist())
    assert ingested == {datetime.fromtimestamp(ACCEPTED_AT_MS / 1000, timezone.utc)}
    status = json.loads((tmp_path / "data" / "archiver" / "status.json").read_text())
    assert status["position"] == last and status["head_position"] == last and status["lag_events"] == 0


def test_several_reads_make_one_batch(tmp_path: Path) -> None:
    # fill() reads whatever the log has; reads in a row accumulate (as `RawRecords`, in Rust) until
    # the batch is due, and the commit covers exactly the records read, up to the last one's position.
    log = _core.DurableLog(str(tmp_path / "log"), durability="none")
    config = load_config(None, overrides={"data_dir": str(tmp_path / "data"), "cold": {
        "batch_rows": 10_000, "batch_bytes": 1 << 30, "flush_interval_s": 3600.0, "maintenance_interval_s": 0}})
    events, dead = open_tables(config)
    archiver = Archiver(config, DurableLogSource(tmp_path / "log"), events, dead)
    archiver.resume()
    poison = encode(raw_event({**unified(999), "http_status": "two hundred"}), ACCEPTED_AT_MS)
    writes = [[encode(parse_body(unified(i)), ACCEPTED_AT_MS) for i in range(120)],
              [b"\x09not a record", poison],
              [encode(parse_body({"topic": "chat", "event": {"id": "legacy-1", "type": "m", "payload": {}}}),
                      ACCEPTED_AT_MS)] + [encode(parse_body(unified(i)), ACCEPTED_AT_MS) for i in range(120, 150)]]
    for records in writes:
        last = log.append(records)
        assert archiver.fill() == len(records)
    log.close()
    assert archiver.fill() == 0 and len(archiver._batch) == 3 and archiver.stats.pending_events == 153
    assert archiver.stats.read_position == last
    archiver.flush()
    archiver.wait_for_commit()
    events.refresh()
    dead.refresh()
    assert committed_position(events) == last and archiver.stats.rows_total == 151
    ids = events.scan().to_arrow().column("id").to_pylist()
    assert sorted(ids) == sorted([f"ev-{i}" for i in range(150)] + ["legacy-1"])
    assert sorted(dead.scan().to_arrow().column("log_position").to_pylist()) == [121, 122]
