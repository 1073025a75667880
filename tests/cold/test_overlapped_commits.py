"""Committing a batch while the next is read and converted (Archiver.overlap_commits) changes
nothing the tables record: the same snapshots, in log order, with the same positions and rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from tests.cold.test_fast_convert import raw_event
from tests.cold.util import unified
from unified_events import _core
from unified_events.cold.archiver import Archiver, committed_position
from unified_events.cold.catalog import open_tables
from unified_events.cold.schema import POSITION_PROPERTY
from unified_events.cold.source import DurableLogSource
from unified_events.config import load_config
from unified_events.durable import encode
from unified_events.events import parse_body

ACCEPTED_AT_MS = 1_700_000_000_123


def _write_log(path: Path) -> int:
    log = _core.DurableLog(str(path), durability="none")
    records = []
    for i in range(1000):
        if i % 97 == 5:  # poison events in some batches, so dead-letter commits interleave
            records.append(encode(raw_event({**unified(i), "http_status": "two hundred"}), ACCEPTED_AT_MS))
        else:
            records.append(encode(parse_body(unified(i, event_type=("trace", "log")[i % 2])), ACCEPTED_AT_MS))
    last = log.append(records)
    log.close()
    return int(last)


def _archive(tmp: Path, log_dir: Path, overlap: bool) -> tuple[Any, Any, Archiver]:
    config = load_config(None, overrides={"data_dir": str(tmp), "cold": {
        "batch_rows": 150, "batch_bytes": 1 << 30, "flush_interval_s": 3600.0, "maintenance_interval_s": 0}})
    events, dead = open_tables(config)
    archiver = Archiver(config, DurableLogSource(log_dir), events, dead)
    archiver.overlap_commits = overlap
    idle_calls: list[bool] = []
    # Maintenance must never run while a commit is in flight.
    archiver.on_idle = lambda: idle_calls.append(archiver._pending is None)
    archiver.run(exit_when_caught_up=True)
    assert idle_calls and all(idle_calls)
    events.refresh()
    dead.refresh()
    return events, dead, archiver


def _history(table: Any) -> list[tuple[str | None, str | None]]:
    return [(s.summary.additional_properties.get(POSITION_PROPERTY), s.summary.get("added-records"))
            for s in table.snapshots()]


def test_overlapped_commits_record_what_sequential_ones_do(tmp_path: Path) -> None:
    last = _write_log(tmp_path / "log")
    runs = {overlap: _archive(tmp_path / f"data-{overlap}", tmp_path / "log", overlap) for overlap in (False, True)}
    (seq_events, seq_dead, seq), (ovl_events, ovl_dead, ovl) = runs[False], runs[True]
    assert ovl.stats.position == seq.stats.position == last
    assert committed_position(ovl_events) == last
    assert ovl.stats.commits_total == seq.stats.commits_total == 7
    assert _history(ovl_events) == _history(seq_events)
    assert _history(ovl_dead) == _history(seq_dead)
    keys = [("id", "ascending")]
    assert ovl_events.scan().to_arrow().sort_by(keys).drop_columns(["ingested_at"]).equals(
        seq_events.scan().to_arrow().sort_by(keys).drop_columns(["ingested_at"]))
    dead_ids = ovl_dead.scan().to_arrow().column("log_position").to_pylist()
    assert sorted(dead_ids) == seq_dead.scan().to_arrow().sort_by([("log_position", "ascending")]) \
        .column("log_position").to_pylist()
    assert len(dead_ids) == len(set(dead_ids)) == 11
    assert pa.compute.sum(ovl_events.scan().to_arrow().column("schema_version")).as_py() == 1000 - 11
