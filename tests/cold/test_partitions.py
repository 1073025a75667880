"""cold/partitions.py splits a table into exactly the partitions pyiceberg's own function finds."""

from __future__ import annotations

import random

import pyarrow as pa

from tests.cold.test_fast_convert import NOW_US, decode, varied_batch
from unified_events.cold.fast import convert_records
from unified_events.cold.partitions import _original, determine_partitions
from unified_events.cold.schema import iceberg_schema, partition_spec


def _by_key(partitions: object) -> dict[str, pa.Table]:
    out = {}
    for p in partitions:  # type: ignore[attr-defined]
        key = repr([fv.value for fv in p.partition_key.field_values])
        assert key not in out
        out[key] = p.arrow_table_partition
    return out


def _same(table: pa.Table) -> None:
    spec, schema = partition_spec(), iceberg_schema()
    ours = _by_key(determine_partitions(spec, schema, table))
    theirs = _by_key(_original(spec=spec, schema=schema, arrow_table=table))
    assert ours.keys() == theirs.keys()
    for key, part in theirs.items():
        assert ours[key].equals(part), key


def test_sorted_table_and_unsorted_fallback() -> None:
    table = convert_records(varied_batch(random.Random(3)), decode, NOW_US).table
    assert table is not None and table.num_rows > 300
    _same(table)  # sorted: slices
    shuffled = table.take(random.Random(1).sample(range(table.num_rows), table.num_rows))
    _same(shuffled)  # partitions in pieces: pyiceberg's own function
    _same(table.slice(0, 1))
    _same(table.slice(0, 0))
