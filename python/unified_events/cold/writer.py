"""Appending the archiver's sorted batch: our own Parquet writes, pyiceberg's commit.

`Table.append` (pyiceberg 0.12) spends most of a 100k-row, 9-partition flush in Python around the
Parquet writes, not in them: per file it projects the batch onto the table schema and walks the
175-field schema twice more for the statistics plan and the column-path -> field-id mapping (profile
of one flush: about 40% of the writer threads' samples). Our batch already has the table's exact
Arrow schema, so `append_sorted` does that work once per schema (cached), writes one Parquet file
per partition on a thread pool (pyarrow releases the GIL while encoding and compressing), builds
the `DataFile`s with pyiceberg's own statistics function, and commits them all in one snapshot
through pyiceberg's snapshot producer, with the same summary properties. What ends up in the table
is what `append` writes: same files per partition, the table's field ids in the Parquet schema,
the table's writer properties (codec, level, page sizes, row-group limit), the same metrics. One
deliberate difference: only columns with few distinct values are dictionary-encoded (see
`dictionary_columns`), so file sizes differ, not contents (tests/cold/test_writer.py).

Anything unusual (a schema that differs from the table's, column names pyiceberg would sanitize, an
unpartitioned table) goes to `Table.append` instead.
"""

from __future__ import annotations

import itertools
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import (  # the private two: what Table.append itself uses (pyiceberg <0.13)
    PYARROW_PARQUET_FIELD_ID_KEY, _check_pyarrow_schema_compatible, _get_parquet_writer_kwargs,
    bin_pack_arrow_table, compute_statistics_plan, data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema, sanitize_column_names
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.utils.properties import property_as_bool, property_as_int

from .catalog import storage_errors, table_warehouse
from .partitions import determine_partitions
from .schema import arrow_schema as events_arrow_schema

# Parquet encoding and zstd release the GIL: one writer per core keeps both cores busy.
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="cold-writer")


@dataclass(frozen=True)
class _Plan:
    """What depends only on the table's schema and properties (computed once, not per file)."""

    file_schema: pa.Schema  # the batch's schema plus each field's Iceberg id
    stats_columns: dict[int, Any]
    path_to_id: dict[str, int]
    writer_kwargs: dict[str, Any]
    row_group_rows: int
    target_file_bytes: int


_plans: dict[tuple[Any, ...], _Plan | None] = {}


@lru_cache(maxsize=1)
def _events_arrow_schema() -> pa.Schema:
    return events_arrow_schema()


def _plan_for(metadata: TableMetadata, arrow_schema: pa.Schema) -> _Plan | None:
    """None: this batch goes through `Table.append`. Only our own batches take the fast path: their
    Arrow types are exactly the table's (schema.py), so nothing needs casting as `append` might."""
    if not arrow_schema.equals(_events_arrow_schema()):
        return None
    schema = metadata.schema()
    key = (str(metadata.table_uuid), schema.schema_id, tuple(sorted(metadata.properties.items())),
           metadata.format_version)
    if key not in _plans:
        if len(_plans) > 16:
            _plans.clear()
        _plans[key] = _plan(schema, arrow_schema, metadata.properties, metadata.format_version)
    return _plans[key]


def _plan(schema: Schema, arrow_schema: pa.Schema, props: dict[str, str], format_version: int) -> _Plan | None:
    if [f.name for f in schema.fields] != arrow_schema.names or sanitize_column_names(schema) != schema:
        return None
    try:
        _check_pyarrow_schema_compatible(schema, arrow_schema, format_version=format_version)  # as append
    except ValueError:
        return None
    if any(pa.types.is_nested(f.type) for f in arrow_schema):
        return None  # field ids are set on top-level fields only
    fields = []
    for field in arrow_schema:
        iceberg_field = schema.find_field(field.name)
        fields.append(field.with_metadata({PYARROW_PARQUET_FIELD_ID_KEY: str(iceberg_field.field_id).encode()}))
    return _Plan(
        file_schema=pa.schema(fields),
        stats_columns=compute_statistics_plan(schema, props),
        path_to_id=parquet_path_to_id_mapping(schema),
        writer_kwargs=_get_parquet_writer_kwargs(props),
        row_group_rows=property_as_int(props, TableProperties.PARQUET_ROW_GROUP_LIMIT,
                                       TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT) or 1 << 20,
        target_file_bytes=property_as_int(props, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
                                          TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT) or 512 << 20,
    )


# Dictionary encoding only pays for columns with few distinct values. For ids, trace ids, JSON
# payloads and measurements it hashes every value only to write a bigger file (measured on the
# benchmark's 11k-row partition files: 30% less CPU and 20% smaller files with it off for them).
_SAMPLE_ROWS = 1000
_MAX_DISTINCT_FRACTION = 0.1


def dictionary_columns(data: pa.Table) -> list[str]:
    """Columns to dictionary-encode: those with few distinct values in a sample of the batch.
    (All-null columns are left out: they are one run of nulls either way.)"""
    sample = data.slice(0, _SAMPLE_ROWS)
    out = []
    for name, column in zip(sample.column_names, sample.columns):
        filled = len(column) - column.null_count
        if filled and pc.count_distinct(column).as_py() <= max(1, filled * _MAX_DISTINCT_FRACTION):
            out.append(name)
    return out


def append_sorted(table: Table, data: pa.Table, snapshot_properties: dict[str, str]) -> None:
    """`table.append(data, snapshot_properties=...)` for a batch sorted by partition (the archiver's)."""
    metadata = table.metadata
    schema = metadata.schema()
    spec = metadata.spec()
    plan = None
    parquet = metadata.properties.get(TableProperties.WRITE_FILE_FORMAT, "parquet") == "parquet"
    if parquet and not spec.is_unpartitioned():
        plan = _plan_for(metadata, data.schema)
    if plan is None:
        table.append(data, snapshot_properties=snapshot_properties)
        return
    data = pa.Table.from_arrays(data.columns, schema=plan.file_schema)  # zero-copy: only field ids added
    dictionary = dictionary_columns(data)
    location = load_location_provider(table_location=metadata.location, table_properties=metadata.properties)
    write_uuid, counter = uuid.uuid4(), itertools.count(0)
    tasks = []
    for partition in determine_partitions(spec, schema, data):
        part = partition.arrow_table_partition
        # Only a partition bigger than a target file is split (pyiceberg's bin packing); a
        # buffer-size check first, as `nbytes` of a sliced table is not cheap to compute.
        pieces = ([part] if part.get_total_buffer_size() <= plan.target_file_bytes
                  else [pa.Table.from_batches(b, schema=plan.file_schema)
                        for b in bin_pack_arrow_table(part, plan.target_file_bytes)])
        tasks += [(piece, partition.partition_key, next(counter)) for piece in pieces]

    def write(task: tuple[pa.Table, Any, int]) -> DataFile:
        piece, key, task_id = task
        path = location.new_data_location(data_file_name=f"00000-{task_id}-{write_uuid}.parquet", partition_key=key)
        output = table.io.new_output(path)
        with output.create(overwrite=True) as stream:
            with pq.ParquetWriter(stream, schema=plan.file_schema, store_decimal_as_integer=True,
                                  use_dictionary=dictionary, **plan.writer_kwargs) as writer:
                writer.write(piece, row_group_size=plan.row_group_rows)
            parquet_metadata = writer.writer.metadata
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=parquet_metadata, stats_columns=plan.stats_columns, parquet_column_mapping=plan.path_to_id)
        return DataFile.from_args(
            content=DataFileContent.DATA, file_path=path, file_format=FileFormat.PARQUET,
            partition=key.partition, file_size_in_bytes=len(output), sort_order_id=None,
            spec_id=metadata.default_spec_id, equality_ids=None, key_metadata=None,
            **statistics.to_serialized_dict())

    # A storage failure (S3 refusing the credentials, say) reaches the archiver's last_error naming
    # the setting to check.
    with storage_errors(table_warehouse(table)):
        data_files = list(_POOL.map(write, tasks))
        with _MetadataOnceTransaction(table) as tx:
            merge = property_as_bool(tx.table_metadata.properties, TableProperties.MANIFEST_MERGE_ENABLED,
                                     TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT)  # as Table.append decides
            update = tx.update_snapshot(snapshot_properties=snapshot_properties)
            with (update.merge_append() if merge else update.fast_append()) as producer:
                for data_file in data_files:
                    producer.append_data_file(data_file)


class _MetadataOnceTransaction(Transaction):
    """`table.transaction()`, with `table_metadata` worked out once per transaction state.

    pyiceberg (0.12) rebuilds it on every read of the property: the updates applied to the table's
    metadata, then a deep copy of the whole metadata (175-column schema, every snapshot). One
    append reads it ~17 times: ~2 ms each with 6 snapshots, growing with every snapshot kept (a
    cProfile of the commit: half its time). The copy is the same until the table's metadata or the
    staged updates change (both are replaced, never mutated), and pyiceberg's metadata models are
    frozen, so the readers within one transaction share one copy.
    """

    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self._metadata_state: tuple[TableMetadata, tuple[Any, ...]] | None = None
        self._metadata_copy: TableMetadata | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        state = self._metadata_state
        if state is None or state[0] is not self._table.metadata or state[1] is not self._updates:
            self._metadata_copy = super().table_metadata
            self._metadata_state = (self._table.metadata, self._updates)
        assert self._metadata_copy is not None
        return self._metadata_copy
