"""POST /query end to end: the read queries of original-system.md §11 J 63, parameters,
aggregates, joins with `sessions`, JSON operators, the answer's shape, timeout and row cap."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server

SERVICES = {"api": [10.0, 20.0, 30.0, 40.0], "db": [5.0, 7.0]}


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    """A server holding a known set of events: unified traces, logs and metrics, and legacy events."""
    batch: list[dict[str, Any]] = []
    for service, durations in SERVICES.items():
        for i, duration in enumerate(durations):
            batch.append({
                "id": f"{service}-{i}", "event_type": "trace", "event_name": "http.request", "ns": "shop",
                "trace_id": f"trace-{i % 2}", "session_id": f"sess-{i % 2}", "service_name": service,
                "duration_ms": duration, "http_status": 500 if i == 0 else 200,
                "data": {"route": f"/r/{i}"}, "attributes": {"region": "eu"}, "db_system": "postgres",
            })
    batch.append({"id": "log-1", "event_type": "log", "event_name": "app.log", "ns": "shop",
                  "log_level": "error", "log_message": "boom", "session_id": "sess-0"})
    batch.append({"id": "metric-1", "event_type": "metric", "event_name": "cpu", "ns": "shop",
                  "metric_name": "cpu", "metric_value": 0.5, "properties": {"host": "a"}})
    status, payload = server.json("POST", "/broadcast", batch)
    assert status == 200 and payload["accepted"] == len(batch), payload
    server.broadcast("orders", {"id": "order-1", "type": "order.created", "payload": {"orderId": "o-1", "status": "paid"}})
    server.broadcast("orders", {"id": "order-2", "type": "order.created", "payload": {"orderId": "o-2", "status": "open"}})
    return server


def query(server: Server, sql: str, params: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"sql": sql}
    if params is not None:
        body["params"] = params
    status, payload = server.json("POST", "/query", body)
    assert status == 200, payload
    return payload


def test_select_star_has_every_hot_column(loaded: Server) -> None:
    result = query(loaded, "SELECT * FROM events")
    assert result["row_count"] == 10 == len(result["rows"])
    for column in ("id", "event_type", "event_name", "ns", "trace_id", "depth", "is_leaf", "is_root", "timestamp",
                   "http_status", "duration_ms", "data", "attributes", "properties", "metric_unit",
                   "topic", "type", "payload", "timestamp_ms", "seq", "extra"):
        assert column in result["columns"], column
    assert set(result["rows"][0]) == set(result["columns"])
    assert isinstance(result["elapsed_ms"], float) and "truncated" not in result


def test_topic_param_order_and_limit(loaded: Server) -> None:
    rows = query(loaded, "SELECT * FROM events WHERE topic = $1", ["orders"])["rows"]
    assert sorted(r["id"] for r in rows) == ["order-1", "order-2"]
    rows = query(loaded, "SELECT id, timestamp_ms FROM events ORDER BY timestamp_ms DESC, seq DESC LIMIT 10")["rows"]
    assert rows[0]["id"] == "order-2" and len(rows) == 10
    assert len(query(loaded, "SELECT * FROM events LIMIT 3")["rows"]) == 3


def test_legacy_payload_is_an_object_and_json_operators_work(loaded: Server) -> None:
    rows = query(loaded, "SELECT id, payload FROM events WHERE topic = $1 AND payload->>'status' = $2",
                 ["orders", "paid"])["rows"]
    assert rows == [{"id": "order-1", "payload": {"orderId": "o-1", "status": "paid"}}]
    rows = query(loaded, "SELECT id FROM events WHERE data->>'route' = '/r/1' AND attributes->>'region' = 'eu' "
                         "ORDER BY id")["rows"]
    assert [r["id"] for r in rows] == ["api-1", "db-1"]
    assert query(loaded, "SELECT properties->>'host' AS h FROM metrics")["rows"] == [{"h": "a"}]
    # fields without a column of their own are in `extra`
    rows = query(loaded, "SELECT count(*) AS n FROM events WHERE extra->>'db_system' = 'postgres'")["rows"]
    assert rows == [{"n": 6}]


def test_count_and_avg_like_the_original(loaded: Server) -> None:
    rows = query(loaded, "SELECT COUNT(*), AVG(id) FROM events")["rows"]
    assert rows[0]["count"] == 10


def test_aggregates_group_by_and_quantiles(loaded: Server) -> None:
    rows = query(loaded, "SELECT service_name, count(*) AS n, avg(duration_ms) AS mean, "
                         "approx_quantile(duration_ms, 0.5) AS p50 FROM traces GROUP BY service_name ORDER BY 1")["rows"]
    assert [(r["service_name"], r["n"], r["mean"]) for r in rows] == [("api", 4, 25.0), ("db", 2, 6.0)]
    errors = query(loaded, "SELECT count(*) AS n FROM events WHERE http_status >= $1", [500])["rows"]
    assert errors == [{"n": 2}]


def test_approx_quantile_is_answered_exactly(loaded: Server) -> None:
    """The engine answers `approx_quantile` with the exact `quantile_disc` (engine.py says why):
    the value is an element of the group, and an unaliased column keeps the name it is asked by."""
    result = query(loaded, "SELECT service_name, approx_quantile(duration_ms, 0.75), "
                           "approx_quantile(duration_ms, [0.25, 1.0]) AS qs FROM traces GROUP BY 1 ORDER BY 1")
    assert result["columns"] == ["service_name", "approx_quantile(duration_ms, 0.75)", "qs"]
    by_service = {r["service_name"]: r for r in result["rows"]}
    assert by_service["api"]["approx_quantile(duration_ms, 0.75)"] == 30.0  # nearest rank of 10, 20, 30, 40
    assert by_service["api"]["qs"] == [10.0, 40.0]
    assert by_service["db"]["approx_quantile(duration_ms, 0.75)"] == 7.0


def test_low_cardinality_columns_are_plain_text_to_queries(loaded: Server) -> None:
    """service_name, event_type, topic, ... are dictionary-encoded in the hot tier (rust/hot/arrow.rs);
    queries see VARCHAR, compare, group and concatenate them as text."""
    rows = query(loaded, "SELECT typeof(service_name) AS t, service_name || '!' AS s, count(*) AS n FROM events "
                         "WHERE service_name IN ('api', 'db') AND event_type = 'trace' GROUP BY ALL ORDER BY s")["rows"]
    assert rows == [{"t": "VARCHAR", "s": "api!", "n": 4}, {"t": "VARCHAR", "s": "db!", "n": 2}]


def test_views_split_by_event_type(loaded: Server) -> None:
    counts = {name: query(loaded, f"SELECT count(*) AS n FROM {name}")["rows"][0]["n"]
              for name in ("traces", "logs", "metrics")}
    assert counts == {"traces": 6, "logs": 1, "metrics": 1}


def test_sessions_and_joins(loaded: Server) -> None:
    sessions = {r["id"]: r for r in query(loaded, "SELECT * FROM sessions")["rows"]}
    assert set(sessions) == {"sess-0", "sess-1"}
    assert sessions["sess-0"]["event_count"] == 4  # api-0, api-2, db-0, log-1
    assert sessions["sess-0"]["started_at"] <= sessions["sess-0"]["ended_at"]
    rows = query(loaded, "SELECT e.* FROM events e INNER JOIN sessions s ON e.session_id = s.id")["rows"]
    assert len(rows) == 7
    rows = query(loaded, "SELECT s.id, count(*) AS errors FROM events e JOIN sessions s ON e.session_id = s.id "
                         "WHERE e.http_status >= 500 OR e.log_level = 'error' GROUP BY s.id")["rows"]
    assert rows == [{"id": "sess-0", "errors": 3}]


def test_sees_events_published_just_before(loaded: Server) -> None:
    loaded.broadcast("fresh", {"id": "fresh-1"})
    assert query(loaded, "SELECT id FROM events WHERE topic = 'fresh'")["rows"] == [{"id": "fresh-1"}]


def test_structured_queries_still_answer(loaded: Server) -> None:
    status, payload = loaded.json("GET", "/query/trace?trace_id=trace-0")
    assert status == 200 and payload["count"] == 3


def test_execution_errors_are_json(loaded: Server) -> None:
    status, payload = loaded.json("POST", "/query", {"sql": "SELECT no_such_column FROM events"})
    assert status == 400 and "no_such_column" in payload["error"]
    status, payload = loaded.json("POST", "/query", {"sql": "SELECT * FROM events WHERE id = $1"})
    assert status == 400 and "parameter" in payload["error"].lower()
    status, payload = loaded.json("GET", "/query")
    assert status == 405


def test_row_cap_and_timeout(make_server: Any) -> None:
    srv = make_server({"query": {"max_rows": 5, "timeout_ms": 500}})
    status, payload = srv.json("POST", "/broadcast", [{"event_type": "log", "event_name": "x", "ns": "a"}] * 400)
    assert status == 200 and payload["accepted"] == 400
    result = query(srv, "SELECT id FROM events")
    assert result["row_count"] == 5 and len(result["rows"]) == 5 and result["truncated"] is True
    assert "truncated" not in query(srv, "SELECT id FROM events LIMIT 5")
    # 400^4 rows: minutes of work, interrupted after the timeout
    status, payload = srv.json("POST", "/query", {"sql": "SELECT count(*) FROM events a, events b, events c, events d"})
    assert status == 408, payload
    assert "timeout" in payload["error"]
    # the engine is usable again
    assert query(srv, "SELECT count(*) AS n FROM events")["rows"] == [{"n": 400}]
    status, payload = srv.json("GET", "/health")
    assert status == 200


def test_index_pushdown_gives_the_same_answer_as_a_scan(loaded: Server) -> None:
    """`trace_id = $1` is answered from the index's rows; `trace_id || '' = $1` scans every row."""
    unindexable = "(trace_id || '')"
    for sql_filter in ("trace_id = $1", "e.trace_id = $1 AND e.duration_ms > 6"):
        pushed = query(loaded, f"SELECT id FROM events e WHERE {sql_filter} ORDER BY id", ["trace-0"])["rows"]
        scan_filter = sql_filter.replace("e.trace_id", "trace_id").replace("trace_id", unindexable)
        scanned = query(loaded, f"SELECT id FROM events e WHERE {scan_filter} ORDER BY id", ["trace-0"])["rows"]
        assert pushed == scanned and pushed
    assert query(loaded, "SELECT count(*) AS n FROM traces WHERE session_id = 'sess-1'")["rows"] == [{"n": 3}]
    assert query(loaded, "SELECT count(*) AS n FROM events WHERE trace_id = 'no-such-trace'")["rows"] == [{"n": 0}]


def test_pushdown_errors_name_the_relation_the_query_names(loaded: Server) -> None:
    """A pushdown query runs on the index rows' own relation under the name it was given."""
    for sql in ("SELECT nope FROM traces WHERE trace_id = 'trace-1' AND seq > 0",
                "SELECT t.nope FROM traces t WHERE t.trace_id = 'trace-1' ORDER BY seq"):
        status, payload = loaded.json("POST", "/query", {"sql": sql})
        assert status == 400 and "nope" in payload["error"], payload
        assert "_indexed" not in payload["error"], payload


def test_pushdown_rows_match_scanned_rows_for_every_column(loaded: Server) -> None:
    """Index-pushdown rows come through a stream source registered once (engine.py), a scan's
    through a registered Table with dictionary columns: the same rows and columns either way."""
    for select in ("*", "*, 2.5::DOUBLE AS d, NULL AS n, 'é\"' AS s, to_timestamp(0) AS t, [1, 2] AS l"):
        pushed = query(loaded, f"SELECT {select} FROM events WHERE trace_id = $1 ORDER BY id", ["trace-1"])
        scanned = query(loaded, f"SELECT {select} FROM events WHERE (trace_id || '') = $1 ORDER BY id", ["trace-1"])
        assert pushed["rows"] == scanned["rows"] and pushed["columns"] == scanned["columns"]
        assert pushed["row_count"] == 3
    rows = query(loaded, "SELECT payload, http_status FROM events WHERE id = $1", ["order-1"])["rows"]
    assert rows == [{"payload": {"orderId": "o-1", "status": "paid"}, "http_status": None}]
    empty = query(loaded, "SELECT id, payload FROM events WHERE trace_id = 'none'")
    assert empty["rows"] == [] and empty["columns"] == ["id", "payload"]


def test_sql_sees_exactly_the_hot_tier_across_segments_and_eviction(make_server: Any) -> None:
    """The Arrow columns are kept in 4096-row segments (cached by the engine between queries) and
    evicted with the ring: after each batch, SQL counts what the ring holds, seqs contiguous and
    in order."""
    srv = make_server({"hot_tier_max_bytes": 4 << 20})
    for batch in range(8):
        events = [{"event_type": "log", "event_name": "fill", "ns": "seg", "id": f"seg-{batch}-{i}"}
                  for i in range(1000)]
        status, payload = srv.json("POST", "/broadcast", events)
        assert status == 200 and payload["accepted"] == 1000
        held = srv.metrics()["hotTierRows"]
        rows = query(srv, "SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM events")["rows"][0]
        assert rows["n"] == held, (batch, rows, held)
        assert rows["hi"] == (batch + 1) * 1000 and rows["hi"] - rows["lo"] + 1 == held
        # a scan reads the partly evicted head, the stable segments and the open one in seq order
        seqs = [r["seq"] for r in query(srv, "SELECT seq FROM events")["rows"]]
        assert seqs == list(range(rows["lo"], rows["hi"] + 1))
    assert held < 8000, "the byte budget evicted the oldest events"
    newest = query(srv, "SELECT id FROM events ORDER BY seq DESC LIMIT 1")["rows"]
    assert newest == [{"id": "seg-7-999"}]
