"""Live queries over WebSocket: a SQL query re-run when new events may change its answer.

Client frames:
  {"type":"subscribe_query","id":"q1","sql":…,"params":[…],"min_interval_ms":500}
  {"type":"unsubscribe_query","id":"q1"}
Server frames:
  {"type":"query_result","id":"q1","rows":[…],"columns":[…],"row_count":n,"truncated"?: true}
  {"type":"query_unsubscribed","id":"q1"}
  {"type":"error","code":…,"message":…,"id":"q1","timestamp":…}

The first result is sent at once. After that, a timer per query looks every `min_interval_ms`
at whether the hot tier changed (a new event or an eviction) and, if so, re-runs the query and
sends the result when it differs from the last one sent: at most one run per interval, none
while nothing happens. Runs share the SQL engine's single worker with POST /query.
A query that fails to run is reported once and removed; a closed connection's queries are
removed at their next tick.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import EventValidationError
from ..events import now_ms
from .engine import QueryBusy, QueryFailed, QueryTimeout, check_params
from .validate import validate

if TYPE_CHECKING:
    from ..stream import Connection, EventStream

log = logging.getLogger("unified_events.live")

INVALID_QUERY = "INVALID_QUERY"
QUERY_LIMIT = "QUERY_LIMIT_EXCEEDED"
QUERY_FAILED = "QUERY_FAILED"
DEFAULT_INTERVAL_MS = 500


@dataclass(eq=False)
class LiveQuery:
    conn: Connection
    id: str
    sql: str
    params: list[Any]
    interval_s: float
    version: tuple[int, int] | None = None  # (last seq, row count) of the hot tier at the last run
    last_body: bytes | None = None
    active: bool = True
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class LiveQueries:
    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self._by_conn: dict[int, dict[str, LiveQuery]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def total(self) -> int:
        return sum(len(q) for q in self._by_conn.values())

    def handle(self, conn: Connection, message: dict[str, Any]) -> None:
        """A `subscribe_query` or `unsubscribe_query` frame from `conn`."""
        qid = message.get("id")
        if not isinstance(qid, str) or not qid:
            self._error(conn, INVALID_QUERY, "id must be a non-empty string", qid)
            return
        if message.get("type") == "unsubscribe_query":
            self.unsubscribe(conn, qid)
            self._send(conn, {"type": "query_unsubscribed", "id": qid})
            return
        try:
            query = self._parse(conn, qid, message)
        except EventValidationError as exc:
            self._error(conn, INVALID_QUERY, str(exc), qid)
            return
        mine = self._by_conn.setdefault(conn.conn_id, {})
        limits = self.stream.config.query
        replacing = qid in mine
        if not replacing and len(mine) >= limits.max_live_per_connection:
            self._error(conn, QUERY_LIMIT, f"At most {limits.max_live_per_connection} live queries per connection", qid)
            return
        if not replacing and self.total >= limits.max_live_total:
            self._error(conn, QUERY_LIMIT, f"The server holds its maximum of {limits.max_live_total} live queries", qid)
            return
        if replacing:
            self.unsubscribe(conn, qid)
        self._by_conn.setdefault(conn.conn_id, {})[qid] = query
        self._spawn(self._run(query))

    def _parse(self, conn: Connection, qid: str, message: dict[str, Any]) -> LiveQuery:
        sql = validate(message.get("sql"))
        params = check_params(message.get("params"))
        interval = message.get("min_interval_ms", DEFAULT_INTERVAL_MS)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise EventValidationError("min_interval_ms must be a number")
        floor = self.stream.config.query.min_live_interval_ms
        return LiveQuery(conn, qid, sql, params, max(float(interval), floor) / 1000)

    def unsubscribe(self, conn: Connection, qid: str) -> bool:
        query = self._by_conn.get(conn.conn_id, {}).pop(qid, None)
        if not self._by_conn.get(conn.conn_id):
            self._by_conn.pop(conn.conn_id, None)
        if query is None:
            return False
        query.active = False
        if query.timer is not None:
            query.timer.cancel()
        return True

    def close(self) -> None:
        for queries in list(self._by_conn.values()):
            for query in list(queries.values()):
                self.unsubscribe(query.conn, query.id)

    # ------------------------------------------------------------------ running

    def _hot_version(self) -> tuple[int, int]:
        hot = self.stream.hot
        return hot.last_seq, len(hot)

    def _tick(self, query: LiveQuery) -> None:
        query.timer = None
        if not query.active:
            return
        if query.conn.closed:
            self.unsubscribe(query.conn, query.id)
        elif self._hot_version() != query.version:
            self._spawn(self._run(query))
        else:
            self._schedule(query)

    def _schedule(self, query: LiveQuery) -> None:
        if query.active:
            query.timer = asyncio.get_running_loop().call_later(query.interval_s, self._tick, query)

    async def _run(self, query: LiveQuery) -> None:
        query.version = self._hot_version()
        try:
            result = await self.stream.sql.run(query.sql, query.params)
        except QueryBusy:
            query.version = None  # try again at the next tick
            self._schedule(query)
            return
        except (QueryTimeout, QueryFailed, EventValidationError) as exc:
            self._error(query.conn, QUERY_FAILED, str(exc), query.id)
            self.unsubscribe(query.conn, query.id)
            return
        except Exception as exc:  # never leave a registered query without a timer
            log.exception("live query %s failed", query.id)
            self._error(query.conn, QUERY_FAILED, f"Internal error: {type(exc).__name__}", query.id)
            self.unsubscribe(query.conn, query.id)
            return
        if not query.active or query.conn.closed:
            self.unsubscribe(query.conn, query.id)
            return
        if result.rows_json != query.last_body:
            query.last_body = result.rows_json
            frame: dict[str, Any] = {"type": "query_result", "id": query.id, "rows": orjson.Fragment(result.rows_json),
                                     "columns": result.columns, "row_count": result.row_count}
            if result.truncated:
                frame["truncated"] = True
            self._send(query.conn, frame)
        self._schedule(query)

    # ------------------------------------------------------------------ frames

    def _send(self, conn: Connection, frame: dict[str, Any]) -> None:
        self.stream.send_control(conn, orjson.dumps(frame))

    def _error(self, conn: Connection, code: str, message: str, qid: Any) -> None:
        self._send(conn, {"type": "error", "code": code, "message": message, "id": qid, "timestamp": now_ms()})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
