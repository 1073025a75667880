"""require_auth on the HTTP API: the route table of security/policy.py, against a real server."""

from __future__ import annotations

import pytest

from tests.security.conftest import ADMIN, AUTH_ENV, bearer, token

PUBLISHER = token("pub", "publisher", pub_topics=["orders.*"])
SUBSCRIBER = token("sub", "subscriber", sub_topics=["*"])
SCRAPE = "scrape-token-for-metrics-0123456789"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.conftest import start_server

    server = start_server(tmp_path_factory.mktemp("httpauth"), {"require_auth": True},
                          env={**AUTH_ENV, "UE_METRICS_TOKEN": SCRAPE})
    yield server
    server.stop()


def test_health_stays_open(srv):
    assert srv.json("GET", "/health")[0] == 200


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/stats", None),
    ("POST", "/query/unified", {}),
    ("GET", "/query/trace?trace_id=x", None),
    ("GET", "/query/session?session_id=x", None),
    ("POST", "/query", {"sql": "SELECT * FROM events"}),
    ("GET", "/metrics", None),
    ("GET", "/some/future/route", None),  # unnamed routes need admin
])
def test_admin_routes(srv, method, path, body):
    status, payload = srv.json(method, path, body)
    assert status == 401 and "Unauthorized" in payload["error"]
    status, payload = srv.json(method, path, body, headers=bearer(SUBSCRIBER))
    assert status == 403 and "admin" in payload["error"]
    assert srv.json(method, path, body, headers=bearer(PUBLISHER))[0] == 403
    assert srv.json(method, path, body, headers=bearer(ADMIN))[0] not in (401, 403)


def test_bad_tokens_are_401_with_a_reason(srv):
    status, headers, payload = srv.request("GET", "/stats", headers=bearer(token("root", "admin", ttl=-60)))
    assert status == 401 and b"expired" in payload and "Bearer" in headers["www-authenticate"]
    status, payload = srv.json("GET", "/stats", headers={"Authorization": "Basic abc"})
    assert status == 401


def test_broadcast_needs_covering_pub_topics(srv):
    event = {"topic": "orders.created", "event": {"type": "x"}}
    assert srv.json("POST", "/broadcast", event)[0] == 401
    assert srv.json("POST", "/broadcast", event, headers=bearer(SUBSCRIBER))[0] == 403
    status, payload = srv.json("POST", "/broadcast", event, headers=bearer(PUBLISHER))
    assert status == 200 and payload["success"] is True
    status, payload = srv.json("POST", "/broadcast", {"topic": "payments", "event": {}}, headers=bearer(PUBLISHER))
    assert status == 403 and "payments" in payload["error"]
    unified = {"event_type": "log", "event_name": "x", "ns": "orders.api"}
    assert srv.json("POST", "/broadcast", unified, headers=bearer(PUBLISHER))[0] == 200
    batch = [{"topic": "orders.a", "event": {}}, {"topic": "secret.b", "event": {}}]
    assert srv.json("POST", "/broadcast", batch, headers=bearer(PUBLISHER))[0] == 403
    assert srv.json("POST", "/broadcast", {"topic": "anything", "event": {}}, headers=bearer(ADMIN))[0] == 200
    # a body the route rejects is still answered by the route, after the auth check
    status, _, payload = srv.request("POST", "/broadcast", raw=b"not json {{{", headers=bearer(PUBLISHER))
    assert status == 400 and b"Invalid JSON body" in payload


def test_metrics_scrape_token(srv):
    assert srv.json("GET", "/metrics", headers=bearer(SCRAPE))[0] == 200
    assert srv.json("GET", "/stats", headers=bearer(SCRAPE))[0] == 401  # opens /metrics only


def test_metrics_loopback_when_configured(make_server):
    server = make_server({"require_auth": True, "auth": {"metrics_loopback": True}}, env=AUTH_ENV)
    assert server.json("GET", "/metrics")[0] == 200
    assert server.json("GET", "/stats")[0] == 401


def test_publish_rate_per_token(make_server):
    import json as _json

    from tests.conftest import recv_json

    server = make_server({"require_auth": True, "limits": {"publish_per_second_per_token": 0.01,
                                                          "publish_burst_per_token": 3}}, env=AUTH_ENV)
    busy = token("busy", "publisher", pub_topics=["r"])
    event = {"topic": "r", "event": {}}
    assert [server.json("POST", "/broadcast", event, headers=bearer(busy))[0] for _ in range(4)] == [200, 200, 200, 429]
    other = token("other", "publisher", pub_topics=["r"])  # another subject has its own bucket
    assert server.json("POST", "/broadcast", event, headers=bearer(other))[0] == 200
    ws = server.connect(query=f"token={busy}")
    ws.send(_json.dumps({"type": "publish", "topic": "r", "event": {}}))
    frame = recv_json(ws)
    assert frame["code"] == "RATE_LIMITED" and "token" in frame["message"]
    status, metrics = server.json("GET", "/metrics", headers=bearer(ADMIN))
    assert metrics["refused"]["rate_limited_token"] == 2
