"""The embedding API: EventStream without sockets."""

from __future__ import annotations

import asyncio

import pytest

from unified_events import Config, ConfigError, EventStream, EventValidationError


async def _roundtrip() -> None:
    stream = EventStream()
    await stream.start()
    received: list[dict] = []

    async def consume() -> None:
        async for event in stream.subscribe("orders.*"):
            received.append(event)
            if len(received) == 2:
                return

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)  # let the subscription register
    first = await stream.publish({"id": "o-1", "type": "order.created", "payload": {"n": 1}}, topic="orders.created")
    await stream.publish({"id": "x-1"}, topic="payments.done")  # not matched
    await stream.publish({"event_type": "log", "event_name": "order.note", "ns": "orders.notes", "trace_id": "t-9"})
    again = await stream.publish({"id": "o-1", "type": "order.created"}, topic="orders.created")
    await asyncio.wait_for(consumer, timeout=5)
    assert first.delivered_to == 1 and again.duplicate is True
    assert [e["topic"] for e in received] == ["orders.created", "orders.notes"]
    assert received[0]["payload"] == {"n": 1} and received[1]["payload"]["trace_id"] == "t-9"
    assert [e["id"] for e in stream.query_unified({"trace_id": "t-9"})] == [received[1]["id"]]
    metrics = stream.metrics()
    assert metrics["eventsAccepted"] == 3 and metrics["dedupHits"] == 1
    with pytest.raises(EventValidationError):
        await stream.publish({"event_type": "custom", "event_name": "x", "ns": "a"})
    await stream.stop()
    assert stream.shutting_down


def test_publish_subscribe_query_roundtrip():
    asyncio.run(_roundtrip())


def test_require_auth_without_validator_refuses_to_start():
    async def main() -> None:
        await EventStream(Config(require_auth=True)).start()

    with pytest.raises(ConfigError) as info:
        asyncio.run(main())
    assert info.value.key == "require_auth"


class _RecordingSink:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def write(self, data: bytes) -> None:
        self.log.append(self.name)

    def close(self, code: int, reason: str) -> None:
        pass


async def _fanout_yields(batch_size: int, connections: int) -> list[str]:
    from unified_events.config import FanOutConfig

    stream = EventStream(Config(fan_out=FanOutConfig(batch_size=batch_size)))
    await stream.start()
    log: list[str] = []
    for i in range(connections):
        conn = stream.open_connection(_RecordingSink(log, "conn"))
        stream.add_subscription(conn, "wide")
    await stream.publish({"id": "w-1"}, topic="wide")
    asyncio.get_running_loop().call_soon(log.append, "other-work")
    for _ in range(20):
        await asyncio.sleep(0)
    await stream.stop(drain_timeout_ms=0)
    return log


def test_fan_out_batch_size_yields_to_the_loop():
    log = asyncio.run(_fanout_yields(batch_size=1000, connections=3000))
    assert log.count("conn") == 3000
    # Other work scheduled after the publish ran between batches, not after all 3000 writes.
    assert 0 < log.index("other-work") < 3000
    unbatched = asyncio.run(_fanout_yields(batch_size=10_000, connections=3000))
    assert unbatched.index("other-work") == 3000


async def _broadcast_all() -> dict[str, object]:
    stream = EventStream()
    await stream.start()
    log: list[str] = []
    for name, topic in (("ws1", "orders"), ("ws2", "payments"), ("ws3", "users")):
        stream.add_subscription(stream.open_connection(_RecordingSink(log, name)), topic)
    first = await stream.broadcast_all({"event": {"id": "all-1", "type": "notice"}})
    again = await stream.broadcast_all({"event": {"id": "all-1", "type": "notice"}})
    for _ in range(5):
        await asyncio.sleep(0)
    outcome = {"writes": sorted(log), "delivered_to": first.delivered_to, "repeat_is_duplicate": again.duplicate,
               "stored": [e["id"] for e in stream.query_unified({"ns": first.topic})]}
    await stream.stop(drain_timeout_ms=0)
    return outcome


def test_broadcast_all_reaches_every_connection_once():
    outcome = asyncio.run(_broadcast_all())
    assert outcome == {"writes": ["ws1", "ws2", "ws3"], "delivered_to": 3, "repeat_is_duplicate": True,
                       "stored": ["all-1"]}
