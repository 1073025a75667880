"""The archiver's fast path for durable-log records: most events are converted in Rust.

`_core.ColdConverter` (rust/cold/mod.rs) decodes log records straight into Arrow builders, for the
common case only (a UnifiedEvent whose values already have their column's JSON type). Every other
record (legacy events, values needing a conversion, poison events, undecodable records) comes
back as an index and goes through the reference path: `decode` then convert.py, row by row. Rust
sorts its rows the way `convert_batch` sorts (a stable sort: the input order is the last key);
when Python converted some rows, the two parts are merged and sorted again with the same keys. So
the table is the one `convert_batch` would have built (tests/cold/test_fast_convert.py).
"""

from __future__ import annotations

import time
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate
from typing import Callable, Sequence

import pyarrow as pa

from .. import _core
from ..events import Accepted
from .convert import SORT_KEYS, Converted, PoisonEvent, columns_to_table, convert_row, event_columns, new_columns
from .schema import columns

ORDER = "_input_order"  # rust/cold/mod.rs ORDER_COLUMN


@lru_cache(maxsize=1)
def _converter() -> _core.ColdConverter:
    return _core.ColdConverter([(c.name, c.kind, c.required) for c in columns()])


Record = tuple[int, bytes]  # (log position, record payload)
Decode = Callable[[bytes], tuple[Accepted, int | None]]


def convert_records(batch: Sequence[Record], decode: Decode, now_us: int | None = None) -> Converted:
    """Like decoding each record and calling `convert_batch`, but with a dead letter also for a
    record `decode` rejects (reason "cannot decode the log record: ...", as the archiver wrote)."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    fast, fallback = _converter().convert([raw for _, raw in batch], now_us)
    return _merge(fast, [batch[i] for i in fallback], fallback, decode, now_us)


def convert_raw(parts: Sequence[_core.RawRecords], decode: Decode, now_us: int | None = None) -> Converted:
    """`convert_records` of the records of `parts` (`LogReader.read_raw`, in order) without making
    a Python object per record: only the records left to Python are taken out as bytes."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    fast, fallback = _converter().convert_raw(list(parts), now_us)
    starts = list(accumulate((len(p) for p in parts), initial=0))  # input index of each part's first record

    def record(i: int) -> Record:
        k = bisect_right(starts, i) - 1
        return parts[k].position(i - starts[k]), parts[k].payload(i - starts[k])

    return _merge(fast, [record(i) for i in fallback], fallback, decode, now_us)


def _merge(fast: object, slow_records: list[Record], fallback: list[int], decode: Decode, now_us: int) -> Converted:
    """The fast path's table with the reference conversion of the records it left merged in."""
    table = pa.table(fast)  # already sorted (rust/cold/mod.rs)
    dead: list[tuple[int, str | None, str, bytes]] = []
    if fallback:
        slow, dead = _convert_slow(slow_records, fallback, decode, now_us)
        if slow is not None:
            table = pa.concat_tables([table, slow]).sort_by([*SORT_KEYS, (ORDER, "ascending")])
    rows = table.num_rows
    if not rows:
        return Converted(None, 0, dead)
    return Converted(table.drop_columns([ORDER]), rows, dead)


def _convert_slow(records: list[Record], order: list[int], decode: Decode,
                  now_us: int) -> tuple[pa.Table | None, list[tuple[int, str | None, str, bytes]]]:
    """The reference conversion of the records the fast path left, with their input order."""
    cols = new_columns(len(records))
    kept: list[int] = []
    dead: list[tuple[int, str | None, str, bytes]] = []
    for (position, raw), index in zip(records, order):
        try:
            accepted, accepted_at_ms = decode(raw)
        except Exception as exc:  # noqa: BLE001 - an undecodable record is a poison record
            dead.append((position, None, f"cannot decode the log record: {type(exc).__name__}: {exc}", raw))
            continue
        try:
            ingested_us = now_us if accepted_at_ms is None else accepted_at_ms * 1000
            values = convert_row(event_columns(accepted), ingested_us)
        except Exception as exc:  # noqa: BLE001 - as convert_batch
            reason = str(exc) if isinstance(exc, PoisonEvent) else f"{type(exc).__name__}: {exc}"
            dead.append((position, getattr(accepted, "id", None), reason, accepted.frame))
            continue
        for col, value in values.items():
            cols[col][len(kept)] = value
        kept.append(index)
    if not kept:
        return None, dead
    cols = [col[:len(kept)] for col in cols]
    table = columns_to_table(cols, len(kept), sort=False)
    return table.append_column(pa.field(ORDER, pa.int64(), nullable=False), pa.array(kept, pa.int64())), dead
