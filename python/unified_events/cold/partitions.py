"""Appending a table whose partitions are contiguous runs, without pyiceberg filtering it per partition.

pyiceberg's append (0.12) splits the table with `_determine_partitions`: one filter of the whole
table per partition. With 175 columns, 9 partitions and 100k rows that was ~75% of the append
(cProfile of one flush). The archiver's table is sorted by (event_type, ns, timestamp), so each
(day, event_type, ns) partition is one contiguous run of rows and a zero-copy slice finds it.
`contiguous_partitions()` swaps in a version that does that, and hands any table whose partitions
are not contiguous runs (or hold nulls) to pyiceberg's own function, so results never differ.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.io import pyarrow as iceberg_arrow
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey, PartitionSpec
from pyiceberg.schema import Schema

_original = iceberg_arrow._determine_partitions


def determine_partitions(spec: PartitionSpec, schema: Schema, arrow_table: pa.Table) -> Iterable[Any]:
    """Same partitions, keys and rows (in order) as pyiceberg's `_determine_partitions`."""
    names = [f"_partition_{field.name}" for field in spec.fields]  # as pyiceberg names them
    keys = []
    for field in spec.fields:
        source = schema.find_field(field.source_id)
        column = arrow_table.column(schema.find_column_name(field.source_id))
        keys.append(field.transform.pyarrow_transform(source.field_type)(column).combine_chunks())
    n = arrow_table.num_rows
    if n == 0 or any(k.null_count for k in keys):
        return _original(spec=spec, schema=schema, arrow_table=arrow_table)
    # Row i starts a run when any key differs from row i-1.
    change = pa.array([False] * (n - 1)) if n > 1 else pa.array([], pa.bool_())
    for k in keys:
        change = pc.or_(change, pc.not_equal(k.slice(1), k.slice(0, n - 1)))
    starts = [0] + [i + 1 for i in pc.indices_nonzero(change).to_pylist()]
    unique = pa.table(dict(zip(names, keys))).group_by(names).aggregate([])
    if len(starts) != unique.num_rows:
        return _original(spec=spec, schema=schema, arrow_table=arrow_table)  # a partition in pieces
    return list(_slices(spec, schema, arrow_table, keys, starts + [n]))


def _slices(spec: PartitionSpec, schema: Schema, table: pa.Table, keys: list[pa.Array],
            bounds: list[int]) -> Iterator[Any]:
    for start, end in zip(bounds, bounds[1:]):
        values = [k[start].as_py() for k in keys]
        key = PartitionKey(field_values=[PartitionFieldValue(field=f, value=v) for f, v in zip(spec.fields, values)],
                           partition_spec=spec, schema=schema)
        yield iceberg_arrow._TablePartition(partition_key=key,
                                            arrow_table_partition=table.slice(start, end - start).combine_chunks())


@contextlib.contextmanager
def contiguous_partitions() -> Iterator[None]:
    """Within the block, pyiceberg appends split tables with `determine_partitions`."""
    iceberg_arrow._determine_partitions = determine_partitions
    try:
        yield
    finally:
        iceberg_arrow._determine_partitions = _original
