"""Section 11 B: topic validation at the upgrade, in frames and in /broadcast."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import recv_json


@pytest.mark.parametrize("query", ["topic=" + "a" * 257, "topic=valid&topic=../invalid", "topic=orders%00admin"])
def test_invalid_topic_on_upgrade_is_400(server, query):
    with pytest.raises(InvalidStatus) as info:
        server.connect(query=query)
    assert info.value.response.status_code == 400
    assert "topic" in json.loads(info.value.response.body)["error"].lower()


@pytest.mark.parametrize("body", [
    {"topic": "../admin"},
    {"topic": "orders;DROP TABLE"},
    {"event": {"topic": "../escape"}},
    {"event_type": "trace", "event_name": "test", "ns": "../admin"},
])
def test_invalid_topic_on_broadcast_is_400(server, body):
    status, payload = server.json("POST", "/broadcast", body)
    assert status == 400 and "Invalid topic" in payload["error"]


def test_valid_broadcast_topic(server):
    assert server.json("POST", "/broadcast", {"topic": "orders", "event": {"type": "test"}})[0] == 200


def test_subscribe_frame_topics_are_validated(server):
    ws = server.connect()
    ws.send(json.dumps({"type": "subscribe", "topics": ["../etc", "fine.topic"]}))
    frame = recv_json(ws)
    assert frame["type"] == "error" and frame["code"] == "INVALID_TOPIC" and frame["topic"] == "../etc"
    assert "path traversal" in frame["message"]
    assert server.wait_for(lambda: "fine.topic" in server.metrics()["topicStats"])
    assert "../etc" not in server.metrics()["topicStats"]


def test_url_like_ns_is_accepted_and_routed_by_derived_topic(server):
    ws = server.connect("api.example.com")
    status, body = server.json("POST", "/broadcast", {
        "event_type": "trace", "event_name": "http.request", "ns": "https://api.example.com"})
    assert status == 200, body
    frame = recv_json(ws)
    assert frame["topic"] == "api.example.com"
    assert frame["payload"]["ns"] == "https://api.example.com"
