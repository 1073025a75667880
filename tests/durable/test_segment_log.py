"""SegmentLog in process, on real files: acknowledgement order and recovery into a stream."""

from __future__ import annotations

import asyncio

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
