"""The strict payload check knows every UnifiedEvent column, with the TSV's types."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from unified_events.security import payloads

TSV = Path("/work/shared/reference/unified-event-columns.tsv")


@pytest.mark.skipif(not TSV.is_file(), reason="the reference column list is not on this machine")
def test_every_column_has_its_type():
    rows = list(csv.reader(TSV.open(), delimiter="\t"))[1:]
    assert len(rows) == 175
    for _, column, logical, iceberg, *_ in rows:
        expected = payloads._expected(column)
        if logical == "json" or logical == "bytes":
            assert expected is None, column  # any JSON value
        elif logical == "timestamp" or column == "timestamp_ns":
            assert expected == "string or number", column
        elif logical in ("number", "bigint"):
            assert expected == "number", column
        elif logical == "boolean":
            assert expected == "boolean", column
        else:
            assert expected == "string", (column, iceberg)
