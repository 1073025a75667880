"""cold/writer.py appends what pyiceberg's `Table.append` appends: same rows, files, metrics, summary."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tests.cold.test_fast_convert import NOW_US, decode, varied_batch
from unified_events.cold.catalog import open_tables
from unified_events.cold.fast import convert_records
from unified_events.cold.partitions import contiguous_partitions
from unified_events.cold.schema import POSITION_PROPERTY
from unified_events.cold.writer import append_sorted
from unified_events.config import load_config

SORT = [("id", "ascending"), ("duration_ms", "ascending"), ("timestamp", "ascending"), ("ingested_at", "ascending")]


def _tables(tmp: Path, name: str) -> Any:
    config = load_config(None, overrides={"data_dir": str(tmp / name), "cold": {"maintenance_interval_s": 0}})
    return open_tables(config)[0]


def _files(table: Any) -> list[dict[str, Any]]:
    """The data files' metadata, minus what differs by name or location only, in partition order."""
    files = table.inspect.files().drop_columns(["file_path", "readable_metrics"]).to_pylist()
    return sorted(files, key=lambda f: repr(f["partition"]))


def _parquet_columns(path: str) -> list[tuple[Any, ...]]:
    schema = pq.ParquetFile(path.removeprefix("file://")).schema
    return [(c.path, c.physical_type, str(c.logical_type), c.max_definition_level) for c in schema] + [
        (f.name, f.metadata and f.metadata.get(b"PARQUET:field_id")) for f in schema.to_arrow_schema()]


def test_same_table_as_pyiceberg_append(tmp_path: Path) -> None:
    rng = random.Random(5)
    batches = [convert_records(varied_batch(rng), decode, NOW_US).table for _ in range(2)]
    theirs, ours = _tables(tmp_path, "theirs"), _tables(tmp_path, "ours")
    for n, batch in enumerate(batches):
        assert batch is not None and batch.num_rows > 300
        with contiguous_partitions():
            theirs.append(batch, snapshot_properties={POSITION_PROPERTY: str(n)})
        append_sorted(ours, batch, {POSITION_PROPERTY: str(n)})

    for table in (theirs, ours):
        table.refresh()
    expected = pa.concat_tables(batches).sort_by(SORT)
    assert ours.scan().to_arrow().sort_by(SORT).equals(expected)
    assert theirs.scan().to_arrow().sort_by(SORT).equals(expected)

    # One snapshot per append, with the same summary (the log position included). Sizes differ:
    # writer.py dictionary-encodes fewer columns.
    def summaries(table: Any) -> list[dict[str, str]]:
        return [{k: v for k, v in s.summary.additional_properties.items() if not k.endswith("files-size")}
                for s in table.snapshots()]

    assert summaries(ours) == summaries(theirs)
    assert [s.summary.operation for s in ours.snapshots()] == [s.summary.operation for s in theirs.snapshots()]

    # Same files per partition, with the same row counts, metrics and bounds (scan planning uses them).
    our_files, their_files = _files(ours), _files(theirs)
    assert len(our_files) == len(their_files) > 2
    for mine, pyiceberg in zip(our_files, their_files):
        for column in ("column_sizes", "file_size_in_bytes"):  # encodings may differ by a few bytes
            mine.pop(column), pyiceberg.pop(column)
        assert mine == pyiceberg

    # The Parquet files carry the table's field ids, physical and logical types, as pyiceberg's do.
    our_paths = sorted(ours.inspect.files().column("file_path").to_pylist())
    their_paths = sorted(theirs.inspect.files().column("file_path").to_pylist())
    assert _parquet_columns(our_paths[0]) == _parquet_columns(their_paths[0])

    # Any Parquet reader (no Iceberg needed) reads the same rows.
    con = duckdb.connect()
    files = [p.removeprefix("file://") for p in our_paths]
    query = "SELECT id, ns, duration_ms FROM read_parquet(?) ORDER BY id, duration_ms NULLS LAST"
    got = con.execute(query, [files]).fetchall()
    assert got == [(r["id"], r["ns"], r["duration_ms"]) for r in expected.select(["id", "ns", "duration_ms"])
                   .sort_by([("id", "ascending"), ("duration_ms", "ascending")]).to_pylist()]


def test_other_batches_go_through_append(tmp_path: Path) -> None:
    table = _tables(tmp_path, "t")
    batch = convert_records(varied_batch(random.Random(6)), decode, NOW_US).table
    assert batch is not None
    narrowed = batch.cast(batch.schema.set(batch.schema.get_field_index("http_status"),
                                           pa.field("http_status", pa.int32())))  # not our exact schema
    append_sorted(table, narrowed.slice(0, 10), {POSITION_PROPERTY: "1"})
    table.refresh()
    assert table.scan().to_arrow().num_rows == 10
    assert table.current_snapshot().summary.additional_properties[POSITION_PROPERTY] == "1"


def test_transaction_metadata_follows_staged_updates(tmp_path: Path) -> None:
    """The transaction append_sorted commits with reuses its metadata copy only while nothing changed."""
    from unified_events.cold.writer import _MetadataOnceTransaction

    table = _tables(tmp_path, "t")
    tx = _MetadataOnceTransaction(table)
    first = tx.table_metadata
    assert tx.table_metadata is first  # nothing staged: the same copy
    assert first is not table.metadata and first == table.metadata  # a copy, as pyiceberg's
    tx.set_properties({"unified-events.test": "1"})
    staged = tx.table_metadata
    assert staged is not first and staged.properties["unified-events.test"] == "1"
    tx.commit_transaction()
    assert table.metadata.properties["unified-events.test"] == "1"
    assert tx.table_metadata == table.metadata  # the committed table's metadata, nothing staged
