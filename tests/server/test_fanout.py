"""Section 11 D: wildcard matching, de-duplicated fan-out, ordering, wide fan-out."""

from __future__ import annotations

import asyncio
import json
import time

import websockets

from tests.conftest import recv_all, recv_json


def test_single_segment_wildcard(server):
    ws = server.connect("orders.*")
    for topic in ("orders.created", "orders.updated", "orders.deleted", "orders.items.added"):
        server.broadcast(topic)
    assert len(recv_all(ws)) == 3


def test_exact_topic_only(server):
    ws = server.connect("orders.created")
    for topic in ("orders.created", "orders.created.v2", "orders"):
        server.broadcast(topic)
    assert [f["topic"] for f in recv_all(ws)] == ["orders.created"]


def test_exact_and_pattern_subscribers_both_receive(server):
    a = server.connect("orders.user-123")
    b = server.connect("orders.*")
    server.broadcast("orders.user-123", {"type": "order.created", "payload": {"orderId": "ord-456"}})
    for ws in (a, b):
        frame = recv_json(ws)
        assert frame["type"] == "order.created" and frame["payload"]["orderId"] == "ord-456"
        assert isinstance(frame["id"], str)


def test_double_star_and_bare_star(server):
    deep = server.connect("orders.**")
    everything = server.connect("*")
    topics = ["orders.created", "orders.item.added", "orders.item.quantity.updated", "orders", "ordersXYZ.created"]
    for topic in topics:
        server.broadcast(topic)
    assert [f["topic"] for f in recv_all(deep)] == topics[:4]
    assert len(recv_all(everything)) == 5


def test_nats_style_tail_wildcard(server):
    ws = server.connect("metrics.>")
    for topic in ("metrics", "metrics.cpu", "metrics.cpu.user"):
        server.broadcast(topic)
    assert [f["topic"] for f in recv_all(ws)] == ["metrics.cpu", "metrics.cpu.user"]


def test_routing_by_subscription(server):
    ws1 = server.connect("r-orders")
    ws2 = server.connect("r-orders", "r-payments")
    ws3 = server.connect("r-users")
    server.broadcast("r-orders")
    server.broadcast("r-payments")
    assert (len(recv_all(ws1)), len(recv_all(ws2)), len(recv_all(ws3))) == (1, 2, 0)


def test_one_copy_when_several_keys_match(server):
    ws = server.connect("dup.created", "dup.*", "dup.**", "*")
    server.broadcast("dup.created")
    assert len(recv_all(ws)) == 1


def test_order_is_kept(server):
    ws = server.connect("ordered")
    for i in range(100):
        server.broadcast("ordered", {"payload": {"seq": i}})
    assert [f["payload"]["seq"] for f in recv_all(ws)] == list(range(100))


def test_pattern_routing_to_100_subscribers(server):
    clients = [server.connect(f"tenant-{i % 10}.*") for i in range(100)]
    server.broadcast("tenant-5.orders")
    received = [len(recv_all(ws, quiet=0.05)) for ws in clients]
    assert sum(received) == 10
    assert all(received[i] == (1 if i % 10 == 5 else 0) for i in range(100))


def test_error_topic_events(server):
    errors = server.connect("_errors")
    orders = server.connect("orders-e")
    server.broadcast("_errors", {"type": "error", "payload": {"code": "PROCESSING_ERROR", "severity": "critical"}})
    frame = recv_json(errors)
    assert frame["type"] == "error" and frame["payload"]["code"] == "PROCESSING_ERROR"
    assert recv_all(orders, quiet=0.2) == []


async def _wide_fanout(ws_url: str, http_port: int, n: int) -> tuple[int, float]:
    clients = []
    for start in range(0, n, 100):
        clients += await asyncio.gather(*[websockets.connect(f"{ws_url}/events?topic=wide") for _ in range(start, min(n, start + 100))])
    await asyncio.gather(*[c.recv() for c in clients])  # welcome frames
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    body = json.dumps({"topic": "wide", "event": {"payload": {"n": 1}}}).encode()
    started = time.perf_counter()
    writer.write(b"POST /broadcast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    frames = await asyncio.wait_for(asyncio.gather(*[c.recv() for c in clients]), timeout=30)
    elapsed = time.perf_counter() - started
    writer.close()
    await asyncio.gather(*[c.close() for c in clients])
    return sum(1 for f in frames if json.loads(f)["payload"] == {"n": 1}), elapsed


def test_fanout_to_1000_subscribers(server):
    delivered, elapsed = asyncio.run(_wide_fanout(server.ws_url, server.http_port, 1000))
    assert delivered == 1000
    assert elapsed < 5  # a generous bound that only catches a collapse; bench/ measures the real figure
