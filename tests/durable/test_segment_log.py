"""SegmentLog in process, on real files: acknowledgement order and recovery into a stream."""

from __future__ import annotations

import asyncio

from unified_events.config import Config, RateLimitConfig
from unified_events.durable import SegmentLog
from unified_events.stream import EventStream


def test_a_duplicate_is_acknowledged_only_after_its_original_is_durable(tmp_path):
    async def main() -> None:
        log = SegmentLog(tmp_path, "fsync")
        stream = EventStream(event_log=log)
        await stream.start()
        original = asyncio.ensure_future(stream.publish({"topic": "t", "event": {"id": "x"}}))
        await asyncio.sleep(0)  # the original is written and now waits for its fsync
        assert log.stats()["last_position"] == 1
        duplicate = await stream.publish({"topic": "t", "event": {"id": "x"}})
        assert duplicate.duplicate
        assert log.stats()["durable_position"] >= 1, "acknowledged a duplicate of a record not yet durable"
        assert not (await original).duplicate
        await stream.stop()

    asyncio.run(main())


def test_restore_rebuilds_hot_tier_and_dedup_from_the_log(tmp_path):
    async def publish_then_close() -> None:
        stream = EventStream(event_log=SegmentLog(tmp_path))
        await stream.start()
        for i in range(5):
            await stream.publish({"topic": "t", "event": {"id": f"e{i}", "payload": {"i": i}}})
        await stream.stop()

    async def reopen() -> None:
        log = SegmentLog(tmp_path)
        stream = EventStream(event_log=log)
        assert stream.restore(log.recent(60_000)) == 5
        await stream.start()
        assert [r["id"] for r in stream.query_unified({"ns": "t"})] == [f"e{i}" for i in reversed(range(5))]
        assert (await stream.publish({"topic": "t", "event": {"id": "e2"}})).duplicate
        assert stream.counters.events_accepted == 0, "restore does not count as accepting or fan out"
        await stream.stop()

    asyncio.run(publish_then_close())
    asyncio.run(reopen())


def test_recent_reads_only_the_newest_segments_within_max_bytes(tmp_path):
    async def fill() -> None:
        stream = EventStream(event_log=SegmentLog(tmp_path, "none", segment_bytes=4096))
        await stream.start()
        for i in range(40):
            await stream.publish({"topic": "t", "event": {"id": f"e{i}"}})
        await stream.stop()

    asyncio.run(fill())
    log = SegmentLog(tmp_path, "none", segment_bytes=4096)
    everything = [a.id for a, _ in log.recent(60_000)]
    assert everything == [f"e{i}" for i in range(40)]
    newest = [a.id for a, _ in log.recent(60_000, max_bytes=8192)]
    assert 0 < len(newest) < 40 and newest == everything[-len(newest):]


def test_events_are_delivered_in_log_order_under_group_commit(tmp_path):
    """Concurrent publishers each wait for the fsync covering their record. A publisher whose record
    is already durable when it looks must still wait its turn: delivering at once would overtake
    earlier records whose acknowledgements are still on their way to the loop."""

    async def main() -> None:
        unlimited = RateLimitConfig(messages_per_second=1e9, burst_size=1e9)
        stream = EventStream(Config(rate_limit=unlimited), event_log=SegmentLog(tmp_path, "fsync"))
        await stream.start()
        count = 3000
        received: list[str] = []

        async def subscriber() -> None:
            async for event in stream.subscribe("t"):
                received.append(event["id"])
                if len(received) == count:
                    return

        reader = asyncio.ensure_future(subscriber())
        await asyncio.sleep(0.05)  # the subscription is in place before anything is published
        await asyncio.gather(*(stream.publish({"topic": "t", "event": {"id": f"e{i}"}}) for i in range(count)))
        await asyncio.wait_for(reader, 30)
        await stream.stop()
        assert received == [a.id for a, _ in SegmentLog(tmp_path, "none").recent(3_600_000)]

    asyncio.run(main())


def test_an_append_already_durable_when_it_looks_still_waits_for_earlier_ones(tmp_path):
    """Deterministic form of the race: an fsync round that began after the second append's write
    finishes before that append looks at the durable position (the loop thread was descheduled).
    The first append's acknowledgement has not reached the loop yet; the second must not overtake it."""

    async def main() -> None:
        log = SegmentLog(tmp_path, "fsync")
        real = log._writer

        class RacyWriter:
            appends = 0

            def append(self, payloads):
                RacyWriter.appends += 1
                return real.append(payloads)

            @property
            def durable_position(self) -> int:
                if RacyWriter.appends >= 2:  # the fsync covering the second write completes now
                    real.wait_durable(real.last_position, 5000)
                return real.durable_position

            def __getattr__(self, name):
                return getattr(real, name)

        log._writer = RacyWriter()
        stream = EventStream(event_log=log)
        await stream.start()
        received: list[str] = []

        async def subscriber() -> None:
            async for event in stream.subscribe("t"):
                received.append(event["id"])
                if len(received) == 2:
                    return

        reader = asyncio.ensure_future(subscriber())
        await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(
            stream.publish({"topic": "t", "event": {"id": "first"}}),
            stream.publish({"topic": "t", "event": {"id": "second"}}),
        ), 10)
        await asyncio.wait_for(reader, 10)
        log._writer = real
        await stream.stop()
        assert received == ["first", "second"]

    asyncio.run(main())
