"""Transport and input hardening: security headers, CORS, per-client limits, strict payloads."""

from __future__ import annotations

import json
import socket

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import recv_json

ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.conftest import start_server

    server = start_server(tmp_path_factory.mktemp("hard"), {
        "max_body_bytes": 4096, "max_frame_bytes": 4096,
        "cors": {"allowed_origins": [ORIGIN]},
        "limits": {"max_connections_per_address": 3, "publish_per_second_per_address": 0.5,
                   "publish_burst_per_address": 5, "strict_payloads": True},
    })
    yield server
    server.stop()


def _ws_health_headers(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
    return data.decode("latin-1").lower()


@pytest.mark.parametrize("method,path", [("GET", "/health"), ("GET", "/nope"), ("GET", "/stats"),
                                         ("POST", "/broadcast"), ("PUT", "/stats")])
def test_security_headers_on_every_response(srv, method, path):
    _, headers, _ = srv.request(method, path, raw=b"{}" if method != "GET" else None)
    lower = {k.lower(): v for k, v in headers.items()}
    assert "default-src 'none'" in lower["content-security-policy"]
    assert lower["x-content-type-options"] == "nosniff"
    assert lower["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in lower  # only under TLS (see test_tls.py)


def test_security_headers_on_the_websocket_listener(srv):
    text = _ws_health_headers(srv.ws_port)
    assert "x-content-type-options: nosniff" in text and "content-security-policy:" in text


def test_cors(srv):
    _, headers, _ = srv.request("GET", "/stats", headers={"Origin": ORIGIN})
    assert headers["access-control-allow-origin"] == ORIGIN
    _, headers, _ = srv.request("GET", "/stats", headers={"Origin": "https://evil.com"})
    assert "access-control-allow-origin" not in {k.lower() for k in headers}
    status, headers, _ = srv.request("OPTIONS", "/broadcast", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    status, _, body = srv.request("OPTIONS", "/broadcast", headers={
        "Origin": "https://evil.com", "Access-Control-Request-Method": "POST"})
    assert status == 403 and b"origin not allowed" in body


def test_body_and_frame_limits(srv):
    status, _, body = srv.request("POST", "/broadcast", raw=b'{"topic":"x","event":{"p":"' + b"a" * 5000 + b'"}}')
    assert status == 413 and b"4096" in body
    ws = srv.connect()
    ws.send("x" * 5000)
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_connections_per_address(srv):
    kept = [srv.connect() for _ in range(3)]
    fourth = srv.connect(welcome=False)
    with pytest.raises(ConnectionClosed) as closed:
        fourth.recv(timeout=5)
    assert closed.value.rcvd.code == 4029 and "Too many connections" in closed.value.rcvd.reason
    kept[0].close()
    srv.wait_for(lambda: srv.json("GET", "/stats")[1]["connectionCount"] == 2)
    srv.connect()  # a slot is free again
    assert srv.metrics()["refused"]["connections_per_address"] >= 1


def test_strict_payloads_name_the_field(srv):
    status, body = srv.json("POST", "/broadcast", {"event_type": "log", "event_name": "x", "ns": "svc",
                                                   "http_status": "200"})
    assert status == 400 and body["details"][0]["path"] == ["http_status"]
    assert "http_status must be a number" in body["details"][0]["message"]
    ws = srv.connect()
    ws.send(json.dumps({"type": "publish", "event": {"event_type": "log", "event_name": "x", "ns": "svc",
                                                     "is_root": "yes"}}))
    frame = recv_json(ws)
    assert frame["type"] == "error" and frame["details"][0]["path"] == ["is_root"]


def test_publish_rate_per_address(srv):
    """Burst 5 at 0.5/s: earlier tests used some; within a few more the HTTP publish gets 429,
    and a WebSocket publish from the same address an error frame."""
    statuses = [srv.json("POST", "/broadcast", {"topic": "rate", "event": {}})[0] for _ in range(8)]
    assert 429 in statuses and statuses[0] in (200, 429)
    status, headers, body = srv.request("POST", "/broadcast", {"topic": "rate", "event": {}})
    assert status == 429 and headers["retry-after"] == "1" and b"rate limit" in body
    ws = srv.connect()
    ws.send(json.dumps({"type": "publish", "topic": "rate", "event": {}, "ref": 1}))
    assert recv_json(ws)["code"] == "RATE_LIMITED"
    assert srv.metrics()["refused"]["rate_limited_address"] >= 2
