"""The cold-tier table: 175 columns generated from `unified-event-columns.tsv` (shipped in this package).

Type mapping (decisions.md, Data): string and string(json) -> string (JSON columns hold JSON text),
long -> long, int -> int, double -> double, boolean -> boolean, date -> date,
timestamptz(us) -> timestamp with time zone, microseconds, UTC. Field ids are the column numbers.
Only `id`, `event_type`, `event_name`, `ns` are required.

Partition spec: day(timestamp), identity(event_type), identity(ns). Sort order: timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import (
    BooleanType, DateType, DoubleType, IntegerType, LongType, NestedField, StringType, TimestamptzType,
)

TABLE_NAME = "unified_events"
DEAD_LETTER_TABLE_NAME = "unified_events_dead_letter"

# The snapshot-summary key holding the last log position whose events this commit contains.
POSITION_PROPERTY = "unified-events.log-position"

# Table properties (original-system.md §6.3, `partitions.md`): zstd Parquet, 128 MiB target files;
# merged manifests keep scan planning cheap after thousands of archiver commits; old metadata
# files are deleted so a long-running archiver does not grow metadata/ without bound.
TABLE_PROPERTIES = {
    "write.parquet.compression-codec": "zstd",
    "write.target-file-size-bytes": str(128 << 20),
    "commit.manifest-merge.enabled": "true",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}

_ICEBERG_TYPES = {
    "string": StringType, "string(json)": StringType, "long": LongType, "int": IntegerType,
    "double": DoubleType, "boolean": BooleanType, "date": DateType, "timestamptz(us)": TimestamptzType,
}
_ARROW_TYPES = {
    "string": pa.string(), "string(json)": pa.string(), "long": pa.int64(), "int": pa.int32(),
    "double": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
    "timestamptz(us)": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True, slots=True)
class Column:
    field_id: int
    name: str
    kind: str  # the tsv's iceberg_type: string, string(json), long, int, double, boolean, date, timestamptz(us)
    required: bool


@lru_cache(maxsize=1)
def columns() -> tuple[Column, ...]:
    text = resources.files(__package__).joinpath("unified-event-columns.tsv").read_text()
    result = []
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        number, name, _logical, kind, required = line.split("\t")[:5]
        if kind not in _ICEBERG_TYPES:
            raise ValueError(f"unified-event-columns.tsv: column {name} has unknown type {kind!r}")
        result.append(Column(int(number), name, kind, required == "required"))
    if len(result) != 175:
        raise ValueError(f"unified-event-columns.tsv: expected 175 columns, found {len(result)}")
    return tuple(result)


@lru_cache(maxsize=1)
def iceberg_schema() -> Schema:
    return Schema(*(NestedField(c.field_id, c.name, _ICEBERG_TYPES[c.kind](), required=c.required)
                    for c in columns()))


@lru_cache(maxsize=1)
def arrow_schema() -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.kind], nullable=not c.required) for c in columns()])


def partition_spec() -> PartitionSpec:
    ids = {c.name: c.field_id for c in columns()}
    return PartitionSpec(
        PartitionField(ids["timestamp"], 1000, DayTransform(), "timestamp_day"),
        PartitionField(ids["event_type"], 1001, IdentityTransform(), "event_type"),
        PartitionField(ids["ns"], 1002, IdentityTransform(), "ns"),
    )


def sort_order() -> SortOrder:
    ids = {c.name: c.field_id for c in columns()}
    return SortOrder(SortField(source_id=ids["timestamp"], transform=IdentityTransform()))


# The dead-letter table: events the archiver could not convert, with the reason, kept verbatim.
def dead_letter_schema() -> Schema:
    return Schema(
        NestedField(1, "log_position", LongType(), required=True),
        NestedField(2, "id", StringType(), required=False),
        NestedField(3, "reason", StringType(), required=True),
        NestedField(4, "payload", StringType(), required=True),
        NestedField(5, "failed_at", TimestamptzType(), required=True),
    )


def dead_letter_arrow_schema() -> pa.Schema:
    return pa.schema([
        pa.field("log_position", pa.int64(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
        pa.field("failed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ])
