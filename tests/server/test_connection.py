"""Section 11 A of original-system.md: connecting, routing, limits, stats, shutdown."""

from __future__ import annotations

import json
import signal
import socket

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import recv_json


def raw_get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


def test_upgrade_required_without_upgrade_header(server):
    status, body = raw_get(server.ws_port, "/events")
    assert status == 426
    assert b"Upgrade Required" in body


def test_welcome_frame_and_subscription(server):
    ws = server.connect(welcome=False)
    ws.close()
    ws = server.connect("orders", welcome=False)
    welcome = recv_json(ws)
    assert welcome["type"] == "connected"
    assert isinstance(welcome["connectionId"], str) and welcome["connectionId"]
    assert welcome["topics"] == ["orders"]
    assert server.wait_for(lambda: server.metrics()["topicStats"].get("orders", {}).get("subscribers") == 1)


def test_several_topics_and_distinct_connection_ids(server):
    server.connect("orders", "payments", "users")
    stats = server.metrics()["topicStats"]
    assert {k: stats[k]["subscribers"] for k in ("orders", "payments", "users")} == {
        "orders": 1, "payments": 1, "users": 1}
    server.close_clients()
    a = server.connect(welcome=False)
    b = server.connect(welcome=False)
    assert recv_json(a)["connectionId"] != recv_json(b)["connectionId"]
    assert server.wait_for(lambda: server.json("GET", "/stats")[1]["connectionCount"] == 2)


def test_max_connections_answers_503(make_server):
    srv = make_server({"max_connections": 2})
    srv.connect()
    srv.connect()
    with pytest.raises(InvalidStatus) as info:
        srv.connect()
    assert info.value.response.status_code == 503
    assert b"Max Connections" in info.value.response.body


def test_unknown_paths_and_wrong_methods(server):
    assert server.json("GET", "/unknown") == (404, {"error": "Not Found"})
    status, body = server.json("GET", "/broadcast")
    assert status == 405 and "error" in body
    status, headers, _ = server.request("DELETE", "/stats")
    assert status == 405 and "POST" not in headers.get("allow", headers.get("Allow", ""))
    assert raw_get(server.ws_port, "/nope")[0] == 404


def test_stats_counts_connections_and_topics(server):
    for i in range(5):
        server.connect(f"stats-{i % 2}")
    assert server.wait_for(lambda: server.json("GET", "/stats")[1] == {"connectionCount": 5, "topicCount": 2})


def test_client_close_removes_connection_and_topics(server):
    ws = server.connect("orders-x", "payments-x")
    ws.close()
    server.clients.clear()
    def gone():
        m = server.metrics()
        return m["activeConnections"] == 0 and "orders-x" not in m["topicStats"] and "payments-x" not in m["topicStats"]
    assert server.wait_for(gone)


def test_health_on_both_listeners(server):
    status, body = server.json("GET", "/health")
    assert status == 200 and body["status"] == "healthy" and "version" in body and "uptime" in body
    status, raw = raw_get(server.ws_port, "/health")
    assert status == 200 and json.loads(raw)["status"] == "healthy"


def test_max_topics_enforced(make_server):
    srv = make_server({"max_topics": 2})
    ws = srv.connect("a", "b")
    ws.send(json.dumps({"type": "subscribe", "topics": ["c"]}))
    frame = recv_json(ws)
    assert frame["type"] == "error" and frame["code"] == "MAX_TOPICS_EXCEEDED"
    with pytest.raises(InvalidStatus) as info:
        srv.connect("d")
    assert info.value.response.status_code == 503


def test_graceful_shutdown_sends_shutdown_then_closes_1001(make_server):
    srv = make_server({"drain_timeout_ms": 1500})
    ws = srv.connect("orders")
    srv.broadcast("orders", {"payload": {"n": 1}})
    srv.broadcast("orders", {"payload": {"n": 2}})
    assert [recv_json(ws)["payload"]["n"] for _ in range(2)] == [1, 2]
    srv.process.send_signal(signal.SIGTERM)
    frame = recv_json(ws)
    assert frame == {"type": "shutdown", "reason": "Server is shutting down"}
    # While draining, HTTP answers 503 (health says shutting_down).
    status, body = srv.json("GET", "/health")
    assert status == 503 and body["status"] == "shutting_down"
    assert srv.json("POST", "/broadcast", {"topic": "orders"})[0] == 503
    with pytest.raises(Exception):
        while True:
            ws.recv(timeout=5)
    assert ws.close_code == 1001
    assert srv.process.wait(timeout=15) == 0
    assert "stopped" in srv.log()


def test_listeners_logged_at_start(server):
    text = server.log()
    assert f"listening http://127.0.0.1:{server.http_port}" in text
    assert f"listening ws://127.0.0.1:{server.ws_port}" in text
