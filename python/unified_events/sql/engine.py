"""Running validated SQL on DuckDB over an Arrow snapshot of the hot tier.

One locked-down in-memory DuckDB connection, used from one worker thread (niced, so fan-out keeps
the CPU), so queries never run on the event loop and never touch each other's state. Per query:
the query text is validated on the loop (cached by text, validate.py); on the worker, the snapshot
is taken (the Rust ring copies only its open segment; frozen segments are shared; with index
pushdown only the matching rows) and becomes the rows of `events` without re-registering anything
in DuckDB per query (see `_EVENTS`); `traces`, `logs`, `metrics`, `sessions` are views over it
created once. A watchdog thread
interrupts a query that runs past the timeout. Rows are serialised to JSON by DuckDB itself
(`to_json`), so a 10 000-row answer costs the worker little GIL time. A point lookup (point.py:
`SELECT … WHERE trace_id = $1`) skips DuckDB: its index rows are written as JSON in Rust."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from .._core import ArrowSegments
from ..errors import EventValidationError
from .point import PointLookup
from .pushdown import INDEXED_RELATIONS, index_filter
from .validate import Checked, checked

# Above this many index matches, scanning the full snapshot is cheaper than slicing row runs.
_PUSHDOWN_MAX_ROWS = 20_000
# After this long without a query, drop the cached pyarrow views of frozen segments, so segments
# the hot tier has since freed are not kept alive by the cache.
_CACHE_IDLE_S = 30.0

# `events` is the hot tier's Arrow columns (rust/hot/arrow.rs) as three registered sources, in seq
# order (`ArrowSegments`): the head (oldest segments, partly evicted), the stable frozen segments and
# the open segment. The stable part is a pyarrow Table, whose scan reads only the columns a query
# uses, registered again only when it changes (a segment freezes every 4096 events); the other two
# are stream sources registered once, whose rows are swapped per query. Registering costs DuckDB
# ~1 ms holding the GIL, which the event loop then waits for: done per query, it doubled fan-out's
# p99 latency while heavy queries ran. An index-pushdown query (pushdown.py) reads only the index
# rows, through `_events_indexed` and its views: its text names them (`Checked.indexed_text`).
# `payload` and `extra` carry the `arrow.json` extension type, so DuckDB reads them as JSON (a legacy
# row's payload comes back as an object, as in the original) without a view casting them.
_EVENTS = "SELECT * FROM _events_head UNION ALL SELECT * FROM _events_frozen UNION ALL SELECT * FROM _events_open"
_VIEWS = {
    "traces": "SELECT * FROM events WHERE event_type = 'trace'",
    "logs": "SELECT * FROM events WHERE event_type = 'log'",
    "metrics": "SELECT * FROM events WHERE event_type = 'metric'",
    "sessions": (
        "SELECT session_id AS id, min(timestamp) AS started_at, max(timestamp) AS ended_at, "
        "min(timestamp_ms) AS started_at_ms, max(timestamp_ms) AS ended_at_ms, count(*) AS event_count "
        "FROM events WHERE session_id IS NOT NULL GROUP BY session_id"
    ),
}

# `approx_quantile` is answered exactly. DuckDB's T-Digest costs ~95 ns per value; the exact
# `quantile_disc` (a selection over the group's values) ~30 ns, and the hot tier is small enough
# (bounded by its byte budget) to hold every value: GROUP BY service_name with the p95 of 1M rows
# took 105 ms with T-Digest and 44 ms exact (one thread). Same result type, same column name, no
# approximation error; a macro in the connection's catalog shadows the built-in.
_EXACT_QUANTILES = "CREATE MACRO approx_quantile(x, q) AS quantile_disc(x, q)"

_PARAM_TYPES = (str, int, float, bool, type(None))

log = logging.getLogger("unified_events.sql")


def _lower_priority(niceness: int) -> None:
    """Runs in the worker thread: make it yield the CPU to the event loop thread. With 2 cores, a
    heavy query otherwise competes with fan-out for CPU time (Linux: niceness is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        log.debug("cannot lower the SQL worker's priority", exc_info=True)


class QueryTimeout(Exception):
    """The query ran past the timeout and was interrupted (HTTP 408)."""


class QueryBusy(Exception):
    """Too many queries are waiting for the worker (HTTP 503)."""


class QueryFailed(Exception):
    """DuckDB refused or failed the query; `status` is 400 when the query is at fault."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class QueryResult:
    rows_json: bytes  # a JSON array of row objects
    columns: list[str]
    row_count: int
    truncated: bool
    elapsed_ms: float

    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = orjson.loads(self.rows_json)
        return rows

    def body(self) -> dict[str, Any]:
        """The POST /query answer; rows are embedded as the JSON DuckDB produced."""
        out: dict[str, Any] = {"rows": orjson.Fragment(self.rows_json), "columns": self.columns,
                               "row_count": self.row_count, "elapsed_ms": self.elapsed_ms}
        if self.truncated:
            out["truncated"] = True
        return out


def check_params(params: Any) -> list[Any]:
    if params is None:
        return []
    if not isinstance(params, list):
        raise EventValidationError("params must be an array")
    if not all(isinstance(p, _PARAM_TYPES) for p in params):
        raise EventValidationError("params must be strings, numbers, booleans or null")
    return params


class SqlEngine:
    def __init__(self, hot: Any, timeout_ms: int = 5000, max_rows: int = 10_000, memory_limit_mb: int = 512,
                 threads: int = 1, max_waiting: int = 16, worker_nice: int = 10) -> None:
        self.hot = hot
        self.timeout_s = timeout_ms / 1000
        self.max_rows = max_rows
        self.memory_limit_mb = memory_limit_mb
        self.threads = threads
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ue-sql",
                                            initializer=_lower_priority, initargs=(worker_nice,))
        self._con: Any = None  # created on the worker thread at first use
        self._in_flight = 0
        self._last_query = 0.0
        # Worker-thread only: pyarrow batches per stable frozen segment, by (first seq, live rows),
        # in order: exactly the segments registered as `_events_frozen`. Importing a segment
        # through the C stream costs ~0.1 ms, ~25 ms for 1M rows; cached, only new segments are
        # imported when the stable part changes.
        self._segment_cache: dict[tuple[int, int], list[Any]] = {}
        self._schema: Any = None
        self._head_rows = _CurrentSnapshot()  # `_events_head`
        self._open_rows = _CurrentSnapshot()  # `_events_open`
        self._indexed_rows = _CurrentSnapshot()  # `_events_indexed`
        self._watchdog = _Watchdog()
        self._idle_check: asyncio.TimerHandle | None = None

    async def run(self, sql: Any, params: Any = None) -> QueryResult:
        """Validate, snapshot, run on the worker. Raises EventValidationError (400), QueryTimeout,
        QueryBusy or QueryFailed."""
        query = checked(sql)  # cached by text: no parse on the loop for a repeated query
        values = check_params(params)
        if self._in_flight >= self.max_waiting:
            raise QueryBusy(f"Too many queries in progress ({self.max_waiting}); try again")
        self._in_flight += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._answer, query, values)
        finally:
            self._in_flight -= 1
            self._last_query = time.monotonic()
            if self._idle_check is None:
                self._idle_check = loop.call_later(_CACHE_IDLE_S, self._forget_if_idle)

    def _forget_if_idle(self) -> None:
        idle_for = time.monotonic() - self._last_query
        if self._in_flight == 0 and idle_for >= _CACHE_IDLE_S:
            self._idle_check = None
            self._executor.submit(self._forget_segments)
        else:
            self._idle_check = asyncio.get_running_loop().call_later(
                max(0.1, _CACHE_IDLE_S - idle_for), self._forget_if_idle)

    def _snapshot(self, query: Checked, params: list[Any]) -> Any:
        """The rows the query can see; only the index matches when pushdown.py allows it."""
        found = index_filter(query.index_equalities, params)
        if found is not None:
            snapshot = self.hot.arrow_snapshot_where(found[0], found[1], _PUSHDOWN_MAX_ROWS)
            if snapshot is not None:
                return snapshot
        return self.hot.arrow_segments()

    def close(self) -> None:
        if self._idle_check is not None:
            self._idle_check.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the worker thread

    def _connection(self) -> Any:
        if self._con is None:
            import duckdb

            con = duckdb.connect(":memory:", config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "memory_limit": f"{self.memory_limit_mb}MB",
                "threads": self.threads,
                "lock_configuration": True,
            })
            import pyarrow as pa

            # The schema alone, without importing any rows.
            self._schema = pa.RecordBatchReader.from_stream(self.hot.arrow_segments().open()).schema
            holders = {"_events_head": self._head_rows, "_events_open": self._open_rows,
                       "_events_indexed": self._indexed_rows}
            for name, holder in holders.items():
                holder.empty = self._schema.empty_table()
                con.register(name, holder)
            con.register("_events_frozen", self._schema.empty_table())
            con.execute(f"CREATE VIEW events AS {_EVENTS}")
            for name, body in _VIEWS.items():
                con.execute(f"CREATE VIEW {name} AS {body}")
                if name in INDEXED_RELATIONS:
                    indexed_body = body.replace("FROM events", f"FROM {INDEXED_RELATIONS['events']}")
                    con.execute(f"CREATE VIEW {INDEXED_RELATIONS[name]} AS {indexed_body}")
            con.execute(_EXACT_QUANTILES)
            self._con = con
        return self._con

    def _answer(self, query: Checked, params: list[Any]) -> QueryResult:
        """A point lookup over its index rows without DuckDB (point.py), any other query on DuckDB.

        The snapshot is taken here, on the worker, holding the GIL, so the hot tier cannot change
        under it (its methods never release the GIL). Taken on the event loop instead, it made
        fan-out's p99 latency 2.06x idle while heavy queries ran back to back, against 1.30x here
        (bench/README.md)."""
        snapshot = self._snapshot(query, params)
        if isinstance(snapshot, ArrowSegments):
            return self._execute(query.text, params, snapshot)
        if query.point is not None:  # the index rows are the answer's rows
            answer = self._answer_point(query.point, snapshot)
            if answer is not None:
                return answer
        assert query.indexed_text is not None  # a pushdown snapshot: the query has indexed equalities
        return self._execute(query.indexed_text, params, snapshot)

    def _answer_point(self, point: PointLookup, snapshot: Any) -> QueryResult | None:
        """The answer of a point lookup whose index rows are `snapshot` (the WHERE clause is the
        index equality, so every row matches it); None when DuckDB must answer (a column name that
        is not one of ours gets DuckDB's error)."""
        started = time.perf_counter()
        columns = point.columns(snapshot.column_names)
        if columns is None:
            return None
        view_filter = None if point.event_type is None else ("event_type", point.event_type)
        limit = self.max_rows + 1 if point.limit is None else min(point.limit, self.max_rows + 1)
        body, count = snapshot.json_rows(columns, view_filter, limit)
        truncated = count > self.max_rows
        if truncated:
            body, count = snapshot.json_rows(columns, view_filter, self.max_rows)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return QueryResult(body, [key for _, key in columns], count, truncated, elapsed)

    def _execute(self, sql: str, params: list[Any], snapshot: Any) -> QueryResult:
        import duckdb

        started = time.perf_counter()
        con = self._connection()
        self._expose(con, snapshot)
        self._watchdog.arm(con, self.timeout_s)
        try:
            wrapped = f"SELECT to_json(_q) FROM ({sql}) AS _q LIMIT {self.max_rows + 1}"
            rows: list[tuple[str]] = con.execute(wrapped, params).fetchall()
            # json, not orjson: a row may hold DuckDB's bare Infinity/NaN (see _without_non_finite).
            columns = list(json.loads(rows[0][0])) if rows else con.sql(sql, params=params).columns
        except duckdb.InterruptException:
            raise QueryTimeout(f"Query exceeded the {self.timeout_s:g} s timeout and was cancelled") from None
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.ConversionException, duckdb.InvalidInputException, duckdb.NotImplementedException,
                duckdb.OutOfRangeException) as exc:
            raise QueryFailed(str(exc).split("\n\n")[0], 400) from None
        except duckdb.Error as exc:
            raise QueryFailed(str(exc).split("\n\n")[0], 500) from None
        finally:
            self._watchdog.disarm()
            # keep no rows alive between queries
            self._head_rows.current = self._open_rows.current = self._indexed_rows.current = None
        truncated = len(rows) > self.max_rows
        if truncated:
            rows = rows[: self.max_rows]
        body = b"[" + b",".join(r[0].encode() for r in rows) + b"]"
        if b"Infinity" in body or b"NaN" in body:
            body = _without_non_finite(body)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return QueryResult(body, columns, len(rows), truncated, elapsed)

    def _expose(self, con: Any, snapshot: Any) -> None:
        """Make `snapshot` the rows of `events` (an `ArrowSegments`) or of `_events_indexed` (the
        index rows of a pushdown)."""
        if isinstance(snapshot, ArrowSegments):
            self._register_frozen(con, snapshot)
            self._head_rows.current, self._open_rows.current = snapshot.head(), snapshot.open()
        else:
            self._indexed_rows.current = snapshot

    def _register_frozen(self, con: Any, segments: Any) -> None:
        """Register the stable frozen segments as `_events_frozen`, unless they are the ones
        registered already. Segments already imported come from the cache."""
        import pyarrow as pa

        frozen_keys = segments.frozen_keys()
        if frozen_keys == list(self._segment_cache):
            return
        batches: list[Any] = []
        keep: dict[tuple[int, int], list[Any]] = {}
        for i, key in enumerate(frozen_keys):
            cached = self._segment_cache.get(key)
            keep[key] = cached if cached is not None else pa.table(segments.frozen(i)).to_batches()
            batches.extend(keep[key])
        self._segment_cache = keep
        con.register("_events_frozen", pa.Table.from_batches(batches, schema=self._schema))

    def _forget_segments(self) -> None:
        """Drop every reference to the hot tier's segments (the registered Table holds them too)."""
        self._segment_cache = {}
        if self._con is not None:
            self._con.register("_events_frozen", self._schema.empty_table())


class _CurrentSnapshot:
    """An Arrow stream source whose rows are the snapshot set for the query now running (`empty`
    between queries). DuckDB asks a registered object for a fresh stream at every scan, so one
    registration serves every query (and a query that scans `events` twice gets the same rows
    twice)."""

    def __init__(self) -> None:
        self.current: Any = None
        self.empty: Any = None

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        rows = self.current if self.current is not None else self.empty
        return rows.__arrow_c_stream__(requested_schema)


class _Watchdog:
    """Interrupts the running query at its deadline. One long-lived thread, started at first use,
    instead of a timer thread per query (thread start-up costs more than a small query)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._con: Any = None
        self._thread: threading.Thread | None = None

    def arm(self, con: Any, seconds: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="ue-sql-watchdog", daemon=True)
                self._thread.start()
            self._con, self._deadline = con, time.monotonic() + seconds
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self._deadline = None
                self._con.interrupt()


def _without_non_finite(body: bytes) -> bytes:
    """DuckDB writes non-finite doubles as bare Infinity/NaN, which is not JSON: make them null."""
    return orjson.dumps(json.loads(body))
