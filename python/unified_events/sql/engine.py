"""Running validated SQL on DuckDB over an Arrow snapshot of the hot tier.

One locked-down in-memory DuckDB connection, used from one worker thread, so queries never run
on the event loop and never touch each other's state. Per query: the snapshot is taken on the
loop (the Rust ring copies only its open segment; frozen segments are shared), registered as
`hot_rows`, and the relations `events`, `traces`, `logs`, `metrics`, `sessions` are views over
it created once. A timer interrupts a query that runs past the timeout. Rows are serialised to
JSON by DuckDB itself (`to_json`), so a 10 000-row answer costs the worker little GIL time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import EventValidationError
from .pushdown import index_filter
from .validate import DIALECT, check

# Above this many index matches, scanning the full snapshot is cheaper than slicing row runs.
_PUSHDOWN_MAX_ROWS = 20_000

# The hot tier's Arrow columns (rust/hot/arrow.rs); `payload` and `extra` hold JSON text and are
# exposed as JSON so a legacy row's payload comes back as an object, as in the original.
_VIEWS = {
    "events": "SELECT * REPLACE (payload::JSON AS payload, extra::JSON AS extra) FROM hot_rows",
    "traces": "SELECT * FROM events WHERE event_type = 'trace'",
    "logs": "SELECT * FROM events WHERE event_type = 'log'",
    "metrics": "SELECT * FROM events WHERE event_type = 'metric'",
    "sessions": (
        "SELECT session_id AS id, min(timestamp) AS started_at, max(timestamp) AS ended_at, "
        "min(timestamp_ms) AS started_at_ms, max(timestamp_ms) AS ended_at_ms, count(*) AS event_count "
        "FROM events WHERE session_id IS NOT NULL GROUP BY session_id"
    ),
}

_PARAM_TYPES = (str, int, float, bool, type(None))


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
                 threads: int = 1, max_waiting: int = 16) -> None:
        self.hot = hot
        self.timeout_s = timeout_ms / 1000
        self.max_rows = max_rows
        self.memory_limit_mb = memory_limit_mb
        self.threads = threads
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ue-sql")
        self._con: Any = None  # created on the worker thread at first use
        self._in_flight = 0

    async def run(self, sql: Any, params: Any = None) -> QueryResult:
        """Validate, snapshot, run on the worker. Raises EventValidationError (400), QueryTimeout,
        QueryBusy or QueryFailed."""
        tree = check(sql)
        values = check_params(params)
        if self._in_flight >= self.max_waiting:
            raise QueryBusy(f"Too many queries in progress ({self.max_waiting}); try again")
        snapshot = self._snapshot(tree, values)
        text = tree.sql(dialect=DIALECT)
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._execute, text, values, snapshot)
        finally:
            self._in_flight -= 1

    def _snapshot(self, tree: Any, params: list[Any]) -> Any:
        """The rows the query can see; only the index matches when pushdown.py allows it."""
        found = index_filter(tree, params)
        if found is not None:
            snapshot = self.hot.arrow_snapshot_where(found[0], found[1], _PUSHDOWN_MAX_ROWS)
            if snapshot is not None:
                return snapshot
        return self.hot.arrow_snapshot()

    def close(self) -> None:
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

            con.register("hot_rows", pa.table(self.hot.arrow_snapshot()))
            for name, body in _VIEWS.items():
                con.execute(f"CREATE VIEW {name} AS {body}")
            self._con = con
        return self._con

    def _execute(self, sql: str, params: list[Any], snapshot: Any) -> QueryResult:
        import duckdb
        import pyarrow as pa

        started = time.perf_counter()
        con = self._connection()
        con.register("hot_rows", pa.table(snapshot))  # shares the snapshot's buffers
        timer = threading.Timer(self.timeout_s, con.interrupt)
        timer.start()
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
            timer.cancel()
            con.unregister("hot_rows")
        truncated = len(rows) > self.max_rows
        if truncated:
            rows = rows[: self.max_rows]
        body = b"[" + b",".join(r[0].encode() for r in rows) + b"]"
        if b"Infinity" in body or b"NaN" in body:
            body = _without_non_finite(body)
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return QueryResult(body, columns, len(rows), truncated, elapsed)


def _without_non_finite(body: bytes) -> bytes:
    """DuckDB writes non-finite doubles as bare Infinity/NaN, which is not JSON: make them null."""
    return orjson.dumps(json.loads(body))
