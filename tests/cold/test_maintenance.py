"""Maintenance commands on a real table: compaction, snapshot expiry, orphan files, retention."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.cold.util import append_events, cli, cold_settings, config_file, read_table, unified
from unified_events.cold.catalog import open_catalog
from unified_events.cold.schema import POSITION_PROPERTY, TABLE_NAME
from unified_events.config import load_config


def _table(settings: dict):  # type: ignore[no-untyped-def]
    cfg = load_config(None, overrides=settings)
    return open_catalog(cfg).load_table((cfg.cold.namespace, TABLE_NAME))


def _rows(settings: dict) -> list[dict]:
    table = read_table(settings).drop_columns(["ingested_at"])
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def _data_files_on_disk(tmp_path: Path) -> int:
    return sum(1 for _ in (tmp_path / "data" / "cold" / "warehouse").rglob("*.parquet"))


def test_compaction_expiry_and_orphans_keep_every_row(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path, batch_rows=60)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    day1, day2 = "2024-03-01T12:00:00Z", "2024-03-02T12:00:00Z"
    append_events(source, [unified(i, timestamp=day1 if i % 2 else day2, duration_ms=float(i)) for i in range(360)])
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")
    before_rows = _rows(settings)
    files_before = len(_table(settings).inspect.files())
    assert files_before == 36  # 6 commits x 6 partitions

    out = json.loads(cli(config, "compact", "--min-files", "2", "--json").stdout)
    assert len(out["result"]) == 6 and sum(p["files_before"] for p in out["result"]) == 36
    table = _table(settings)
    assert len(table.inspect.files()) == 6
    assert _rows(settings) == before_rows
    assert table.current_snapshot().summary.additional_properties[POSITION_PROPERTY] == "360"

    text = cli(config, "expire-snapshots", "--older-than-hours", "0", "--retain-last", "1").stdout
    assert "expired" in text and len(_table(settings).snapshots()) == 1
    assert _data_files_on_disk(tmp_path) >= 42
    out = json.loads(cli(config, "remove-orphan-files", "--min-age-hours", "0", "--json").stdout)
    assert len(out["result"]["orphans"]) >= 36
    assert _data_files_on_disk(tmp_path) == 6
    assert _rows(settings) == before_rows

    # The archiver still resumes where it was: nothing archived twice after maintenance.
    summary = json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)
    assert summary["rows"] == 0 and summary["position"] == 360


def test_retention_drops_old_days_only(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    now = datetime.now(timezone.utc)
    old = (now - timedelta(days=40)).isoformat()
    recent = (now - timedelta(days=2)).isoformat()
    append_events(source, [unified(i, timestamp=old if i < 100 else recent) for i in range(250)])
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")

    out = json.loads(cli(config, "apply-retention", "--days", "30", "--json").stdout)
    assert out["result"]["rows_deleted"] == 100 and out["result"]["rows_left"] == 150
    ids = set(read_table(settings).column("id").to_pylist())
    assert ids == {f"ev-{i}" for i in range(100, 250)}
    summary = json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)
    assert summary["rows"] == 0  # the deleted events are not archived again


def test_compact_refuses_while_an_archiver_holds_the_table(tmp_path: Path) -> None:
    from unified_events.cold.archiver import ArchiverLock

    settings = cold_settings(tmp_path)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(1)])
    cli(config, "archive", "--source", f"ndjson:{source}", "--once")
    lock = ArchiverLock(load_config(None, overrides=settings))
    assert lock.acquire(wait=False)
    try:
        out = cli(config, "compact", check=False)
    finally:
        lock.release()
    assert out.returncode == 1 and "archiver" in out.stderr and "is running" in out.stderr


def test_the_archiver_runs_maintenance_on_its_schedule(tmp_path: Path) -> None:
    import signal
    import time

    from tests.cold.util import spawn_archiver

    settings = cold_settings(tmp_path, batch_rows=50, maintenance_interval_s=1, compact_min_files=2,
                             snapshot_retention_hours=0, orphan_min_age_hours=0)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i, timestamp="2024-03-01T00:00:00Z") for i in range(300)])
    archiver = spawn_archiver(config, source, tmp_path / "archiver.log")
    status_path = tmp_path / "data" / "archiver" / "status.json"
    try:
        deadline = time.monotonic() + 60
        report = None
        # Wait for a maintenance run that follows the last commit: on a slow machine the first run
        # can come before all 300 events are archived (then the final batch is still uncompacted).
        while time.monotonic() < deadline and report is None:
            time.sleep(0.2)
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                continue
            candidate = status.get("last_maintenance")
            if (candidate is not None and status.get("position") == 300
                    and candidate["at_ms"] > (status.get("last_commit_at_ms") or 0)):
                report = candidate
        assert report is not None, (tmp_path / "archiver.log").read_text()
    finally:
        archiver.send_signal(signal.SIGTERM)
        assert archiver.wait(timeout=30) == 0
    # The run that compacted may be an earlier one than `report` (runs come every second), so the
    # table's state is what is checked: one file per partition, no file left unreferenced.
    assert set(report) >= {"partitions_compacted", "orphan_files_deleted", "snapshots_expired"}
    table = _table(settings)
    assert len(table.inspect.files()) == 3
    # Left on disk: exactly the files some retained snapshot (the newest 3 are kept) still references.
    referenced = set(table.inspect.all_files().column("file_path").to_pylist())
    assert _data_files_on_disk(tmp_path) == len(referenced)
    ids = read_table(settings).column("id").to_pylist()
    assert sorted(ids) == sorted(f"ev-{i}" for i in range(300))
