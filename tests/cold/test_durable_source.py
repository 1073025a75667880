"""The archiver reading the real durable log (`_core.DurableLog` writes, `_core.LogReader` reads)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from tests.cold.util import cli, cold_settings, config_file, read_table, unified
from unified_events import _core
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
