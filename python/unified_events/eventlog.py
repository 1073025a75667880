"""The seam between acceptance and fan-out where the durable log sits.

An event is acknowledged only after `append` returns. Today's default keeps events in memory
only (the hot tier); the segmented on-disk log with group-commit fsync, and a NATS JetStream
log for multi-node deployments, implement the same two methods.

A log may also offer, and the stream uses when present: `barrier()` (await until everything
appended so far is durable; a duplicate is acknowledged only after it), `maintain()` (segment
retention, run by the cleanup tick) and `stats()` (the `durableLog` block of /metrics).
`unified_events.durable.SegmentLog` is the on-disk implementation `unified-events serve` uses.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from .events import Accepted


class EventLog(Protocol):
    async def append(self, events: Sequence[Accepted]) -> None:
        """Make `events` durable under the configured policy; raise if they could not be.
        Concurrent calls return in the order they were made (the stream fans out on return)."""

    async def close(self) -> None: ...


class MemoryOnlyLog:
    """No durability: an acknowledged event lives in the hot tier only until retention or restart."""

    async def append(self, events: Sequence[Accepted]) -> None:
        return None

    async def close(self) -> None:
        return None
