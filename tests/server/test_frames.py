"""Section 11 C: client frames (subscribe, unsubscribe, ping, parse errors, publish)."""

from __future__ import annotations

import json

from tests.conftest import recv_all, recv_json


def subscribers(server, topic):
    return server.metrics()["topicStats"].get(topic, {}).get("subscribers", 0)


def test_subscribe_and_unsubscribe_frames(server):
    ws = server.connect()
    ws.send(json.dumps({"type": "subscribe", "topics": ["f-orders", "f-payments"]}))
    assert server.wait_for(lambda: subscribers(server, "f-orders") == 1 and subscribers(server, "f-payments") == 1)
    ws.send(json.dumps({"type": "unsubscribe", "topics": ["f-orders"]}))
    assert server.wait_for(lambda: subscribers(server, "f-orders") == 0 and subscribers(server, "f-payments") == 1)
    assert recv_all(ws, quiet=0.2) == []  # no reply frames for either


def test_ping_pong(server):
    ws = server.connect()
    ws.send(json.dumps({"type": "ping"}))
    frame = recv_json(ws)
    assert frame["type"] == "pong" and isinstance(frame["timestamp"], int)


def test_parse_errors_keep_the_socket_open_and_are_counted(server):
    before = server.metrics()["parseErrors"]
    ws = server.connect()
    for _ in range(3):
        ws.send("not valid json")
        frame = recv_json(ws)
        assert frame["type"] == "error" and frame["code"] == "PARSE_ERROR"
        assert frame["message"] == "Invalid JSON message" and isinstance(frame["timestamp"], int)
    ws.send(b"\xff\xfe binary junk")
    assert recv_json(ws)["code"] == "PARSE_ERROR"
    ws.send(json.dumps({"type": "unknown_type"}))
    ws.send(json.dumps({"type": "ping"}))
    assert recv_json(ws)["type"] == "pong"  # unknown type: no reply, socket open
    assert server.metrics()["parseErrors"] - before == 4


def test_publish_over_websocket_is_acked_and_fanned_out(server):
    sub = server.connect("ws-pub")
    pub = server.connect()
    pub.send(json.dumps({"type": "publish", "topic": "ws-pub", "ref": 7,
                         "event": {"id": "ws-evt-1", "type": "note", "payload": {"x": 1}}}))
    assert recv_json(pub) == {"type": "ack", "id": "ws-evt-1", "ref": 7}
    frame = recv_json(sub)
    assert frame["id"] == "ws-evt-1" and frame["payload"] == {"x": 1} and frame["topic"] == "ws-pub"
    pub.send(json.dumps({"type": "publish", "topic": "../bad", "event": {"type": "x"}}))
    err = recv_json(pub)
    assert err["type"] == "error" and "Invalid topic" in err["message"]


def test_refresh_token_format_checks(server):
    import base64
    import time

    def jwt(claims):
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
        return f"{enc({'alg': 'HS256'})}.{enc(claims)}.sig"

    ws = server.connect()
    cases = [
        (jwt({"exp": int(time.time()) + 600}), "token_refreshed", None),
        (jwt({"exp": int(time.time()) - 600}), "token_error", "expired"),
        ("invalid.token", "token_error", "format"),
        ("!!!.@@@.###", "token_error", "format"),
        ("", "token_error", "empty"),
        (None, "token_error", "empty"),
    ]
    for token, kind, text in cases:
        ws.send(json.dumps({"type": "refresh_token", "token": token}))
        frame = recv_json(ws)
        assert frame["type"] == kind, (token, frame)
        assert isinstance(frame["timestamp"], int)
        if text:
            assert text in frame["error"].lower()
