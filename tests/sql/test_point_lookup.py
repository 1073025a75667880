"""Point lookups (`SELECT … FROM events WHERE trace_id = $1`, sql/point.py) are answered from the
index rows without DuckDB: against a real server, their answers must be DuckDB's own. The
oracle is the same query with `AND seq >= 0` added, which the index still narrows to the same
rows but which is no longer point-shaped, so DuckDB answers it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Server
from unified_events.sql.validate import checked

_trace_ids = itertools.count()


def answer(server: Server, sql: str, params: list[Any]) -> dict[str, Any]:
    status, payload = server.json("POST", "/query", {"sql": sql, "params": params})
    assert status == 200, payload
    payload.pop("elapsed_ms")
    return payload


def assert_point_answer_is_duckdbs(server: Server, sql: str, params: list[Any]) -> dict[str, Any]:
    """`sql` (point-shaped, `{and}` where the oracle's extra condition goes) answers as DuckDB does."""
    point_sql, duckdb_sql = sql.format(**{"and": ""}), sql.format(**{"and": " AND seq >= 0"})
    assert checked(point_sql).point is not None and checked(duckdb_sql).point is None
    point, duckdb = answer(server, point_sql, params), answer(server, duckdb_sql, params)
    assert point == duckdb, (sql, params)
    return point


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    batch = [
        {"id": "t-1", "event_type": "trace", "event_name": "http.request", "ns": "shop", "trace_id": "trace-a",
         "session_id": "s-1", "correlation_id": "c-1", "service_name": "api", "duration_ms": 0.00001,
         "http_status": 500, "depth": 2, "data": {"route": "/x", "n": [1, 2.5, None]}, "attributes": {"é": "\u0001"},
         "error_message": 'quote " backslash \\ newline \n tab \t', "db_system": "postgres"},
        {"id": "t-2", "event_type": "trace", "event_name": "http.request", "ns": "shop", "trace_id": "trace-a",
         "session_id": "s-1", "duration_ms": 1e300, "vital_value": -0.0, "http_status": 200, "is_leaf": True},
        {"id": "l-1", "event_type": "log", "event_name": "app.log", "ns": "shop", "trace_id": "trace-a",
         "session_id": "s-1", "log_level": "error", "log_message": "boom 💥", "properties": {"k": "v"}},
        {"id": "m-1", "event_type": "metric", "event_name": "cpu", "ns": "shop", "trace_id": "trace-b",
         "metric_name": "cpu", "metric_value": 12345678901.5, "metric_unit": "%"},
    ]
    status, payload = server.json("POST", "/broadcast", batch)
    assert status == 200 and payload["accepted"] == len(batch), payload
    server.broadcast("orders", {"id": "order-1", "type": "order.created",
                                "payload": {"orderId": "o-1", "items": [{"sku": "a", "qty": 2}], "note": None}})
    server.broadcast("orders", {"id": "order-2", "type": "order.created", "payload": "just text"})
    return server


@pytest.mark.parametrize(("sql", "params", "rows"), [
    ("SELECT * FROM events WHERE trace_id = $1{and}", ["trace-a"], 3),
    ("SELECT * FROM traces WHERE trace_id = $1{and}", ["trace-a"], 2),
    ("SELECT * FROM logs WHERE session_id = 's-1'{and}", [], 1),
    ("SELECT * FROM metrics WHERE trace_id = $1{and}", ["trace-a"], 0),
    ("SELECT id, payload AS p, \"SERVICE_NAME\", e.duration_ms FROM events e WHERE e.trace_id = $1{and}",
     ["trace-a"], 3),
    ("SELECT e.* FROM events AS e WHERE 'trace-a' = trace_id{and} LIMIT 2", [], 2),
    ("SELECT * FROM events WHERE id = $1{and}", ["order-1"], 1),
    ("SELECT payload, extra, topic, type FROM events WHERE id = $1{and}", ["order-2"], 1),
    ("SELECT * FROM events WHERE correlation_id = $1{and} LIMIT 0", ["c-1"], 0),
    ("SELECT id FROM events WHERE trace_id = $1{and}", ["no-such-trace"], 0),
])
def test_point_lookups_answer_as_duckdb_does(loaded: Server, sql: str, params: list[Any], rows: int) -> None:
    result = assert_point_answer_is_duckdbs(loaded, sql, params)
    assert result["row_count"] == rows == len(result["rows"])


def test_values_survive_the_rust_writer(loaded: Server) -> None:
    rows = answer(loaded, "SELECT * FROM events WHERE trace_id = $1", ["trace-a"])["rows"]
    first = rows[0]
    assert first["error_message"] == 'quote " backslash \\ newline \n tab \t'
    assert first["duration_ms"] == 0.00001 and first["http_status"] == 500 and first["depth"] == 2
    assert first["extra"] == {"db_system": "postgres"} and first["seq"] >= 1
    assert rows[1]["duration_ms"] == 1e300 and rows[2]["log_message"] == "boom 💥"
    order = answer(loaded, "SELECT payload FROM events WHERE id = $1", ["order-1"])["rows"]
    assert order == [{"payload": {"orderId": "o-1", "items": [{"sku": "a", "qty": 2}], "note": None}}]


def test_row_cap_applies_to_point_lookups(make_server: Any) -> None:
    srv = make_server({"query": {"max_rows": 5}})
    events = [{"event_type": "log", "event_name": "x", "ns": "a", "trace_id": "many"}] * 12
    assert srv.json("POST", "/broadcast", events)[0] == 200
    capped = answer(srv, "SELECT id FROM events WHERE trace_id = 'many'", [])
    assert capped["row_count"] == 5 == len(capped["rows"]) and capped["truncated"] is True
    assert "truncated" not in answer(srv, "SELECT id FROM events WHERE trace_id = 'many' LIMIT 5", [])
    assert_point_answer_is_duckdbs(srv, "SELECT id FROM events WHERE trace_id = 'many'{and}", [])


def test_an_unknown_column_gets_duckdbs_error(loaded: Server) -> None:
    status, payload = loaded.json("POST", "/query", {"sql": "SELECT nope FROM events WHERE trace_id = 'trace-a'"})
    assert status == 400 and "nope" in payload["error"]


@pytest.mark.parametrize(("sql", "is_point"), [
    ("SELECT * FROM events WHERE trace_id = $1", True),
    ("SELECT id AS x, seq FROM traces t WHERE t.session_id = 'a' LIMIT 3", True),
    ("SELECT * FROM events WHERE trace_id = $1 ORDER BY seq", False),
    ("SELECT * FROM events WHERE trace_id = $1 AND ns = 'a'", False),
    ("SELECT * FROM events WHERE trace_id = $1 LIMIT 2 OFFSET 1", False),
    ("SELECT DISTINCT id FROM events WHERE trace_id = $1", False),
    ("SELECT id, upper(id) FROM events WHERE trace_id = $1", False),
    ("SELECT payload->>'status' FROM events WHERE trace_id = $1", False),
    ("SELECT * EXCLUDE (seq) FROM events WHERE trace_id = $1", False),
    ("SELECT * FROM sessions WHERE id = $1", False),
    ("SELECT count(*) FROM events WHERE trace_id = $1", False),
    ("SELECT * FROM events", False),
])
def test_which_queries_are_point_lookups(sql: str, is_point: bool) -> None:
    assert (checked(sql).point is not None) == is_point


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_unified_event = st.fixed_dictionaries({"event_type": st.sampled_from(["trace", "log", "metric"]),
                                        "event_name": st.just("e"), "ns": st.just("prop")}, optional={
    "service_name": _text, "log_message": _text, "duration_ms": st.floats(allow_nan=False, allow_infinity=False),
    "http_status": st.integers(-2**63, 2**63 - 1), "data": _json, "attributes": _json, "custom": _json,
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_unified_event, min_size=1, max_size=4), payload=_json)
def test_any_event_reads_back_as_duckdb_reads_it(server: Server, events: list[dict[str, Any]], payload: Any) -> None:
    trace = f"prop-{next(_trace_ids)}"
    for event in events:
        event["trace_id"] = trace
    assert server.json("POST", "/broadcast", events)[0] == 200
    server.broadcast("prop", {"id": trace, "type": "t", "payload": payload})
    result = assert_point_answer_is_duckdbs(server, "SELECT * FROM events WHERE trace_id = $1{and}", [trace])
    assert result["row_count"] == len(events)
    assert_point_answer_is_duckdbs(server, "SELECT payload, extra FROM events WHERE id = $1{and}", [trace])
