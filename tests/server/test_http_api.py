"""Sections 11 H, I and L: /broadcast, structured queries, metrics, limits of the HTTP API."""

from __future__ import annotations

import json

import pytest

from tests.conftest import recv_all, recv_json

UNIFIED = [
    {"id": "evt-1", "event_type": "trace", "event_name": "http.request", "ns": "api-service", "trace_id": "trace-abc",
     "session_id": "sess-1"},
    {"id": "evt-2", "event_type": "log", "event_name": "app.log", "ns": "api-service", "log_level": "error",
     "trace_id": "trace-abc", "session_id": "sess-1"},
    {"id": "evt-3", "event_type": "metric", "event_name": "cpu", "ns": "metrics-service", "trace_id": "trace-abc"},
    {"id": "evt-4", "event_type": "trace", "event_name": "db.query", "ns": "api-service"},
]


@pytest.fixture(scope="module")
def seeded(server):
    for event in UNIFIED:
        status, body = server.json("POST", "/broadcast", event)
        assert status == 200 and body == {"success": True, "id": event["id"], "event_type": event["event_type"]}
    return server


@pytest.mark.parametrize("filters,count", [
    ({"event_type": "trace"}, 2), ({"ns": "api-service"}, 3), ({"log_level": "error"}, 1), ({"limit": 2}, 2),
    ({"event_type": "trace", "ns": "api-service"}, 2),
])
def test_query_unified(seeded, filters, count):
    status, body = seeded.json("POST", "/query/unified", filters)
    assert status == 200
    ids = [e["id"] for e in body["events"] if e["id"].startswith("evt-")]
    if "limit" in filters:
        assert body["count"] == 2
    else:
        assert len(ids) == count


def test_query_unified_newest_first_and_bad_json(seeded):
    status, body = seeded.json("POST", "/query/unified", {"trace_id": "trace-abc"})
    stamps = [e["timestamp"] for e in body["events"]]
    assert stamps == sorted(stamps, reverse=True)
    status, _, raw = seeded.request("POST", "/query/unified", raw=b"{nope")
    assert status == 400 and json.loads(raw) == {"error": "Invalid JSON body"}


def test_query_trace_and_session(seeded):
    status, body = seeded.json("GET", "/query/trace?trace_id=trace-abc")
    assert status == 200 and body["trace_id"] == "trace-abc" and body["count"] == 3
    assert all(e["trace_id"] == "trace-abc" for e in body["events"])
    assert seeded.json("GET", "/query/trace?trace_id=nope")[1] == {"trace_id": "nope", "events": [], "count": 0}
    assert seeded.json("GET", "/query/trace") == (400, {"error": "trace_id is required"})
    assert seeded.json("GET", "/query/session") == (400, {"error": "session_id is required"})
    assert seeded.json("GET", "/query/session?session_id=sess-1")[1]["count"] == 2


def test_stored_row_keeps_zeros_and_json_columns(server):
    server.json("POST", "/broadcast", {"id": "zeros-1", "event_type": "vital", "event_name": "lcp", "ns": "web",
                                       "trace_id": "trace-zero", "http_status": 0, "vital_value": 2500,
                                       "data": {"userId": "user-123", "plan": "premium"}})
    row = server.json("GET", "/query/trace?trace_id=trace-zero")[1]["events"][0]
    assert row["http_status"] == 0 and row["vital_value"] == 2500
    assert json.loads(row["data"])["plan"] == "premium"


def test_legacy_broadcast(server):
    ws = server.connect("api-test")
    status, body = server.json("POST", "/broadcast", {"topic": "api-test", "event": {"type": "test", "payload": {"via": "http"}}})
    assert status == 200 and body["success"] is True
    frames = recv_all(ws)
    assert len(frames) == 1 and frames[0]["payload"] == {"via": "http"} and frames[0]["type"] == "test"


def test_unified_frame_carries_whole_event(server):
    ws = server.connect("api-service")
    server.json("POST", "/broadcast", {"id": "unified-evt-1", "event_type": "trace", "event_name": "http.request",
                                       "ns": "api-service", "trace_id": "trace-http-1"})
    frame = recv_json(ws)
    assert frame["id"] == "unified-evt-1" and frame["type"] == "trace" and frame["topic"] == "api-service"
    assert frame["payload"]["trace_id"] == "trace-http-1" and isinstance(frame["timestamp"], int)


@pytest.mark.parametrize("raw", [b"not valid json {{{", b"", b'"just a string"', b"42", b"null", b"[1,2,3]"])
def test_broadcast_rejects_bad_bodies(server, raw):
    status, _, body = server.request("POST", "/broadcast", raw=raw)
    assert status == 400 and "error" in json.loads(body)


def test_broadcast_rejects_invalid_unified_event(server):
    status, body = server.json("POST", "/broadcast", {"event_type": "custom", "event_name": "x", "ns": "a"})
    assert status == 400 and body["success"] is False and body["error"] == "Invalid UnifiedEvent"
    assert body["details"][0]["path"] == ["event_type"]


def test_broadcast_batch_with_per_item_results(server):
    ws = server.connect("batch")
    items = [{"topic": "batch", "event": {"payload": {"seq": i}}} for i in (1, 2, 3)]
    items.insert(1, {"topic": "../bad"})
    status, body = server.json("POST", "/broadcast", items)
    assert status == 200 and body["accepted"] == 3 and body["rejected"] == 1 and body["success"] is False
    assert body["results"][1]["success"] is False and "Invalid topic" in body["results"][1]["error"]
    assert [f["payload"]["seq"] for f in recv_all(ws)] == [1, 2, 3]
    assert server.json("POST", "/broadcast", [{"topic": "batch"}] * 1001)[0] == 400
    assert server.json("POST", "/broadcast", [])[0] == 400


def test_body_over_limit_is_413(server):
    status, _, body = server.request("POST", "/broadcast", raw=b'{"topic":"big","event":{"payload":"' + b"x" * (1 << 20) + b'"}}')
    assert status == 413 and "exceeds" in json.loads(body)["error"]


def test_metrics_json_and_prometheus(server):
    for i in range(3):
        server.connect("m-orders")
    before = server.metrics()["messagesSent"]
    for _ in range(5):
        server.broadcast("m-orders")
    m = server.metrics()
    assert m["activeConnections"] == 3 and m["totalConnections"] >= 3
    assert m["messagesSent"] - before == 5 and m["messagesPerSecond"] > 0
    assert m["topicStats"]["m-orders"]["subscribers"] == 3
    for key in ("latencyP50", "latencyP95", "latencyP99", "errorCount", "parseErrors", "hotTierRows", "hotTierBytes"):
        assert key in m
    status, headers, text = server.request("GET", "/metrics", headers={"Accept": "text/plain"})
    content_type = headers.get("content-type", headers.get("Content-Type", ""))
    assert status == 200 and "text/plain" in content_type
    body = text.decode()
    for name in ("eventstream_connections_active 3", "eventstream_messages_total", "eventstream_errors_total",
                 'eventstream_dropped_total{reason="rate_limit"}', 'eventstream_dropped_total{reason="dedup"}',
                 "eventstream_hot_events", "eventstream_hot_bytes", "eventstream_fanout_latency_ms_bucket"):
        assert name in body, name
    assert server.request("GET", "/metrics?format=prometheus")[2].decode().startswith("# HELP eventstream_connections_active")
