"""Live queries over WebSocket: subscribe_query / query_result / unsubscribe_query."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import Server, recv_all, recv_json

COUNT_SQL = "SELECT count(*) AS n FROM events WHERE topic = $1"


def subscribe(ws: Any, qid: str, sql: str, params: list[Any] | None = None, interval: int = 100) -> None:
    ws.send(json.dumps({"type": "subscribe_query", "id": qid, "sql": sql, "params": params or [],
                        "min_interval_ms": interval}))


def next_frame(ws: Any, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame


def test_result_at_once_then_on_new_events(server: Server) -> None:
    ws = server.connect()
    subscribe(ws, "q1", COUNT_SQL, ["live.a"])
    first = next_frame(ws, "query_result")
    assert first["id"] == "q1" and first["rows"] == [{"n": 0}] and first["columns"] == ["n"]
    server.broadcast("live.a", {"id": "la-1"})
    assert next_frame(ws, "query_result")["rows"] == [{"n": 1}]
    server.broadcast("live.a", {"id": "la-2"})
    server.broadcast("live.a", {"id": "la-3"})
    # both events land within an interval or two; the count settles at 3
    rows = next_frame(ws, "query_result")["rows"]
    if rows != [{"n": 3}]:
        rows = next_frame(ws, "query_result")["rows"]
    assert rows == [{"n": 3}]


def test_unchanged_answers_are_not_resent(server: Server) -> None:
    ws = server.connect()
    subscribe(ws, "q", COUNT_SQL, ["live.quiet"])
    assert next_frame(ws, "query_result")["rows"] == [{"n": 0}]
    server.broadcast("live.other", {"id": "lo-1"})  # changes the hot tier, not this answer
    assert [f for f in recv_all(ws, quiet=0.6) if f["type"] == "query_result"] == []


def test_unsubscribe_stops_results(server: Server) -> None:
    ws = server.connect()
    subscribe(ws, "q", COUNT_SQL, ["live.b"])
    next_frame(ws, "query_result")
    ws.send(json.dumps({"type": "unsubscribe_query", "id": "q"}))
    assert next_frame(ws, "query_unsubscribed")["id"] == "q"
    server.broadcast("live.b", {"id": "lb-1"})
    assert [f for f in recv_all(ws, quiet=0.6) if f["type"] == "query_result"] == []


def test_bad_queries_get_error_frames(server: Server) -> None:
    ws = server.connect()
    subscribe(ws, "bad", "DROP TABLE events")
    error = next_frame(ws, "error")
    assert error["id"] == "bad" and error["code"] == "INVALID_QUERY" and "DROP" in error["message"]
    ws.send(json.dumps({"type": "subscribe_query", "sql": "SELECT 1"}))
    assert next_frame(ws, "error")["code"] == "INVALID_QUERY"
    subscribe(ws, "fails", "SELECT no_such_column FROM events")
    error = next_frame(ws, "error")
    assert error["id"] == "fails" and error["code"] == "QUERY_FAILED"
    ws.send(json.dumps({"type": "ping"}))
    assert next_frame(ws, "pong")  # the connection is still served


def test_limits_per_connection_and_total(make_server: Any) -> None:
    srv = make_server({"query": {"max_live_per_connection": 2, "max_live_total": 3}})
    a = srv.connect()
    for qid in ("a1", "a2", "a3"):
        subscribe(a, qid, "SELECT 1 AS one", interval=1000)
    # The first answers wait for DuckDB to load: count frames rather than wait for a quiet socket.
    frames = [recv_json(a, timeout=30) for _ in range(3)] + recv_all(a, quiet=0.5)
    assert sorted(f["id"] for f in frames if f["type"] == "query_result") == ["a1", "a2"]
    assert [(f["id"], f["code"]) for f in frames if f["type"] == "error"] == [("a3", "QUERY_LIMIT_EXCEEDED")]
    b = srv.connect()
    subscribe(b, "b1", "SELECT 1 AS one", interval=1000)
    subscribe(b, "b2", "SELECT 1 AS one", interval=1000)
    frames = [recv_json(b, timeout=30) for _ in range(2)] + recv_all(b, quiet=0.5)
    assert [f["id"] for f in frames if f["type"] == "query_result"] == ["b1"]
    assert [f["code"] for f in frames if f["type"] == "error"] == ["QUERY_LIMIT_EXCEEDED"]
    # a closed connection's queries are released
    a.close()
    deadline = time.monotonic() + 10
    while True:
        subscribe(b, "b2", "SELECT 1 AS one", interval=1000)
        frame = recv_json(b)
        if frame["type"] == "query_result":
            break
        assert time.monotonic() < deadline, "the closed connection's live queries were not released"
        time.sleep(0.3)
