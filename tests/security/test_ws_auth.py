"""require_auth on the WebSocket: the upgrade, per-frame permissions, refresh (issue 5)."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from tests.conftest import recv_all, recv_json
from tests.security.conftest import ADMIN, bearer, token, upgrade_status


def test_upgrade_needs_a_valid_token(auth_server):
    now = int(time.time())
    assert upgrade_status(auth_server, "orders") == 401
    assert upgrade_status(auth_server, "orders", query="token=not-a-jwt") == 401
    forged = token(secret="another-secret-0123456789abcdef0")
    assert upgrade_status(auth_server, "orders", query=f"token={forged}") == 401
    assert upgrade_status(auth_server, "orders", query=f"token={token(ttl=-60)}") == 401
    unsigned = jwt.encode({"sub": "x", "role": "admin", "exp": now + 60}, key=None, algorithm="none")
    assert upgrade_status(auth_server, "orders", query=f"token={unsigned}") == 401
    assert upgrade_status(auth_server, "orders", query=f"token={token(role='root')}") == 401
    good = token(sub_topics=["orders.*", "orders"])
    assert upgrade_status(auth_server, "orders", query=f"token={good}") == 101
    assert upgrade_status(auth_server, "orders.created", headers=bearer(good)) == 101
    assert upgrade_status(auth_server, "payments", query=f"token={good}") == 403
    # a requested pattern must itself be covered: orders.* does not authorise *
    assert upgrade_status(auth_server, "*", query=f"token={good}") == 403


def test_subscribe_frames_are_checked(auth_server):
    ws = auth_server.connect(query=f"token={token(sub_topics=['orders.*'])}")
    ws.send(json.dumps({"type": "subscribe", "topics": ["orders.created", "payments.done"]}))
    frames = recv_all(ws)
    assert [(f["type"], f.get("code"), f.get("topic")) for f in frames] == [("error", "FORBIDDEN", "payments.done")]
    for topic, event_id in (("orders.created", "sub-1"), ("payments.done", "sub-2")):
        auth_server.request("POST", "/broadcast", {"topic": topic, "event": {"id": event_id}}, headers=bearer(ADMIN))
    assert [f["id"] for f in recv_all(ws)] == ["sub-1"]


def test_publish_frames_need_covering_pub_topics(auth_server):
    sub = auth_server.connect("ws.a", query=f"token={token(sub_topics=['ws.*'], pub_topics=['ws.*'])}")
    sub.send(json.dumps({"type": "publish", "topic": "ws.a", "event": {"id": "p-0"}, "ref": 1}))
    assert recv_json(sub)["code"] == "FORBIDDEN"  # a subscriber may not publish at all
    pub = auth_server.connect(query=f"token={token('pub', 'publisher', sub_topics=[], pub_topics=['ws.*'])}")
    pub.send(json.dumps({"type": "publish", "topic": "ws.a", "event": {"id": "p-1"}, "ref": 2}))
    assert recv_json(pub) == {"type": "ack", "id": "p-1", "ref": 2}
    pub.send(json.dumps({"type": "publish", "topic": "other", "event": {"id": "p-2"}, "ref": 3}))
    refused = recv_json(pub)
    assert refused["type"] == "error" and refused["code"] == "FORBIDDEN" and refused["ref"] == 3
    pub.send(json.dumps({"type": "publish", "event": {"event_type": "log", "event_name": "x", "ns": "other"}}))
    assert recv_json(pub)["code"] == "FORBIDDEN"  # a unified event's topic is its ns
    assert [f["id"] for f in recv_all(sub)] == ["p-1"]


def test_query_frames_need_admin(auth_server):
    ws = auth_server.connect(query=f"token={token(sub_topics=['*'])}")
    ws.send(json.dumps({"type": "subscribe_query", "sql": "SELECT * FROM events", "ref": "q"}))
    frame = recv_json(ws)
    assert frame["type"] == "error" and frame["code"] == "FORBIDDEN" and "admin" in frame["message"]


def test_refresh_verifies_signature_and_replaces_rights(auth_server):
    ws = auth_server.connect("a.x", "b.x", query=f"token={token(sub_topics=['a.*', 'b.*'])}")
    for bad, text in [(token(secret="wrong-secret-0123456789abcdef0123"), "signature"),
                      (token(ttl=-60), "expired"), ("", "empty"), (None, "empty"), ("a.b.c", "format")]:
        ws.send(json.dumps({"type": "refresh_token", "token": bad}))
        frame = recv_json(ws)
        assert frame["type"] == "token_error" and text in frame["error"].lower(), (bad, frame)
    ws.send(json.dumps({"type": "refresh_token", "token": token(sub_topics=["a.*"])}))
    frames = recv_all(ws)
    assert frames[0]["type"] == "unsubscribed" and frames[0]["topics"] == ["b.x"]
    assert frames[1]["type"] == "token_refreshed" and frames[1]["allowedTopics"] == ["a.*"]
    for topic in ("a.x", "b.x"):
        body = {"topic": topic, "event": {"id": f"r-{topic}"}}
        auth_server.request("POST", "/broadcast", body, headers=bearer(ADMIN))
    assert [f["id"] for f in recv_all(ws)] == ["r-a.x"]
    ws.send(json.dumps({"type": "subscribe", "topics": ["b.x"]}))
    assert recv_json(ws)["code"] == "FORBIDDEN"


def test_refusals_are_counted(auth_server):
    upgrade_status(auth_server, "orders")
    status, metrics = auth_server.json("GET", "/metrics", headers=bearer(ADMIN))
    assert status == 200
    assert metrics["refused"]["token_rejected"] >= 1
    _, _, text = auth_server.request("GET", "/metrics", headers={**bearer(ADMIN), "Accept": "text/plain"})
    assert 'eventstream_refused_total{reason="token_rejected"}' in text.decode()


@pytest.fixture(scope="module")
def short_ttl_server(tmp_path_factory):
    from tests.conftest import start_server
    from tests.security.conftest import AUTH_ENV

    srv = start_server(tmp_path_factory.mktemp("ttl"), {"require_auth": True, "token_ttl": 3,
                                                         "auth": {"expiry_notice_s": 1}}, env=AUTH_ENV)
    yield srv
    srv.stop()


def test_token_ttl_expiry_closes_4001_unless_refreshed(short_ttl_server):
    from websockets.exceptions import ConnectionClosed

    srv = short_ttl_server
    lapsing = srv.connect("t", query=f"token={token(sub_topics=['t'])}")
    renewing = srv.connect("t", query=f"token={token(sub_topics=['t'])}")
    started = time.monotonic()
    # token_ttl = 3 s, notice 1 s before: token_expiring at about 2 s
    warning = recv_json(renewing, timeout=10)
    assert warning["type"] == "token_expiring" and warning["expiresAt"] > time.time() * 1000 - 1000
    renewing.send(json.dumps({"type": "refresh_token", "token": token(sub_topics=["t"])}))
    assert recv_json(renewing)["type"] == "token_refreshed"
    assert recv_json(lapsing, timeout=10)["type"] == "token_expiring"
    error = recv_json(lapsing, timeout=10)
    assert error == {"type": "token_error", "error": "Token expired", "timestamp": error["timestamp"]}
    with pytest.raises(ConnectionClosed) as closed:
        lapsing.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    assert time.monotonic() - started >= 2.5
    # the refreshed connection outlives the first deadline and still gets events
    time.sleep(max(0.0, started + 3.5 - time.monotonic()))
    srv.request("POST", "/broadcast", {"topic": "t", "event": {"id": "after"}}, headers=bearer(token("p", "admin")))
    assert recv_json(renewing)["id"] == "after"
