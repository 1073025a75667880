"""Sections 11 E and F: dedup, outbound rate limit, backpressure and the slow-consumer close."""

from __future__ import annotations

import socket
import time

from tests.conftest import recv_all, recv_json


def test_duplicate_ids_are_delivered_once(server):
    ws = server.connect("dedup-t")
    before = server.metrics()["dedupHits"]
    replies = [server.broadcast("dedup-t", {"id": "unique-event-id"}) for _ in range(3)]
    frames = recv_all(ws)
    assert [f["id"] for f in frames] == ["unique-event-id"]
    assert [r.get("duplicate", False) for r in replies] == [False, True, True]
    assert server.metrics()["dedupHits"] - before == 2


def test_same_id_on_two_topics_is_two_events(server):
    ws = server.connect("dd-topic1", "dd-topic2")
    server.broadcast("dd-topic1", {"id": "shared-id"})
    server.broadcast("dd-topic2", {"id": "shared-id"})
    assert len(recv_all(ws)) == 2


def test_dedup_window_expires(make_server):
    srv = make_server({"dedup_window_ms": 300})
    ws = srv.connect("win")
    srv.broadcast("win", {"id": "again"})
    time.sleep(0.5)
    srv.broadcast("win", {"id": "again"})
    assert len(recv_all(ws)) == 2


def test_batch_duplicates_within_one_batch_are_dropped(server):
    ws = server.connect("dd-batch")
    status, body = server.json("POST", "/broadcast", [
        {"topic": "dd-batch", "event": {"id": "b1"}}, {"topic": "dd-batch", "event": {"id": "b1"}}])
    assert status == 200 and [r.get("duplicate", False) for r in body["results"]] == [False, True]
    assert len(recv_all(ws)) == 1


def test_rate_limit_per_connection(make_server):
    srv = make_server({"rate_limit": {"messages_per_second": 10, "burst_size": 20}})
    a = srv.connect("rl")
    b = srv.connect("rl")
    status, _ = srv.json("POST", "/broadcast", [{"topic": "rl", "event": {"payload": {"i": i}}} for i in range(30)])
    assert status == 200
    assert len(recv_all(a)) == 20 and len(recv_all(b)) == 20  # buckets are per connection
    assert srv.metrics()["dropped"]["rate_limit"] == 20
    time.sleep(1.05)
    srv.json("POST", "/broadcast", [{"topic": "rl", "event": {"payload": {"i": i}}} for i in range(10)])
    assert len(recv_all(a)) == 10


def stalled_subscriber(port: int, topic: str) -> socket.socket:
    """A raw client that completes the handshake and then never reads: the kernel buffers fill,
    the server's transport pauses, and the core's queue cap starts dropping."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, so it sticks
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /events?topic={topic} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    data = b""
    sock.settimeout(timeout)
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_backpressure_drops_notifies_and_closes_slow_consumer(make_server):
    srv = make_server({"max_queued_bytes": 256 * 1024, "slow_consumer_timeout_ms": 1000,
                       "rate_limit": {"messages_per_second": 1e6, "burst_size": 1e6}})
    sock = stalled_subscriber(srv.ws_port, "flood")
    healthy = srv.connect("other")
    batch = [{"topic": "flood", "event": {"payload": {"blob": "x" * 2000}}} for _ in range(100)]  # ~200 KiB

    def flood_until_closed():
        assert srv.json("POST", "/broadcast", batch)[0] == 200
        return srv.metrics()["slowConsumerCloses"] == 1

    srv.wait_for(flood_until_closed, timeout=30)
    metrics = srv.metrics()
    assert metrics["dropped"]["backpressure"] > 0
    assert metrics["dropped"]["backpressure"] >= 10 * metrics["backpressureNotices"]  # not one notice per drop
    # The server kept serving others throughout.
    srv.broadcast("other", {"payload": {"ok": True}})
    assert recv_json(healthy)["payload"] == {"ok": True}
    data = read_until_closed(sock)
    close_at = data.rindex(b"\x88")  # the stream ends with a close frame: code 1013 and the reason
    assert data[close_at + 2:close_at + 4] == (1013).to_bytes(2, "big")
    assert b"Slow consumer" in data[close_at:]
    sock.close()


def test_backpressure_notice_reaches_a_client_that_resumes(make_server):
    srv = make_server({"max_queued_bytes": 32 * 1024, "slow_consumer_timeout_ms": 60000,
                       "rate_limit": {"messages_per_second": 1e6, "burst_size": 1e6}})
    sock = stalled_subscriber(srv.ws_port, "slow")
    time.sleep(0.2)
    batch = [{"topic": "slow", "event": {"payload": {"blob": "y" * 4000}}} for _ in range(200)]
    for _ in range(10):
        srv.json("POST", "/broadcast", batch)
    srv.wait_for(lambda: srv.metrics()["dropped"]["backpressure"] > 0)
    data = read_until_closed(sock, timeout=2)
    notices = data.count(b"Messages being dropped due to backpressure")
    assert 1 <= notices <= 10  # at most one per burst (one per HTTP batch here), not one per drop
    assert srv.metrics()["dropped"]["backpressure"] >= 10 * notices
    sock.close()
    m = srv.metrics()
    assert m["slowConsumerCloses"] == 0
