"""The seam between acceptance and fan-out where the durable log sits.

An event is acknowledged only after `append` returns. Today's default keeps events in memory
only (the hot tier); the segmented on-disk log with group-commit fsync, and a NATS JetStream
log for multi-node deployments, implement the same methods.
`unified_events.durable.SegmentLog` is the on-disk implementation `unified-events serve` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

from .events import Accepted

if TYPE_CHECKING:
    from ._core import LegacyBatch


class EventLog(Protocol):
    async def append(self, events: Sequence[Accepted]) -> None:
        """Make `events` durable under the configured policy; raise if they could not be.
        Concurrent calls return in the order they were made (the stream fans out on return)."""

    async def append_legacy(self, batch: LegacyBatch, fresh: list[bool] | None) -> None:
        """`append` for the events of a fast-path batch that `fresh` selects (all when None)."""

    async def barrier(self) -> None:
        """Return once everything appended so far is durable (a duplicate is acknowledged only after it)."""

    def maintain(self) -> int:
        """Retention, run by the cleanup tick; returns how many segments it deleted."""

    def stats(self) -> dict[str, Any] | None:
        """The `durableLog` block of /metrics; None when there is nothing to report."""

    async def close(self) -> None: ...


class MemoryOnlyLog:
    """No durability: an acknowledged event lives in the hot tier only until retention or restart."""

    async def append(self, events: Sequence[Accepted]) -> None:
        return None

    async def append_legacy(self, batch: LegacyBatch, fresh: list[bool] | None) -> None:
        return None

    async def barrier(self) -> None:
        return None

    def maintain(self) -> int:
        return 0

    def stats(self) -> dict[str, Any] | None:
        return None

    async def close(self) -> None:
        return None
