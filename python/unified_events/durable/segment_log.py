"""`SegmentLog`: the `EventLog` of `unified-events serve`, over the Rust segmented log.

The append path never blocks the event loop on an fsync, nor under `durability = "fsync"` on a
write. `append` encodes the batch; under `fsync` the Rust writer queues the records, and its
committer thread writes everything queued so far, fsyncs it and signals an eventfd the loop
watches (`add_reader`, no Python thread and no GIL hand-off); the loop then resolves every future
whose last position the new durable position covers. One fsync acknowledges every batch written
before it started (group commit). Appends return in log order, even one whose record is already
durable when it looks (see `append`). Under `interval` and `none` the append writes the batch in the
loop thread (a page-cache write) and returns once written. A failed write or fsync fails every
waiter, and every later append, with `LogUnavailableError` naming the first failure; `stats()`
reports it as `error` (the server's /health and /metrics). A restart reopens the log (cutting
the torn tail) and publishing resumes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

import orjson

from .. import _core
from ..errors import LogUnavailableError
from ..events import Accepted, now_ms
from .records import decode_with_time

log = logging.getLogger("unified_events")

LOG_SUBDIR = "log"
ARCHIVER_POSITION_FILE = Path("archiver") / "position.json"
_RESTORE_BATCH = 10_000


class SegmentLog:
    def __init__(self, data_dir: str | Path, durability: str = "fsync", interval_ms: int = 100,
                 segment_bytes: int = 64 << 20, hot_retention_ms: int = 300_000) -> None:
        self.data_dir = Path(data_dir)
        self.log_dir = self.data_dir / LOG_SUBDIR
        self.durability = durability
        self.hot_retention_ms = hot_retention_ms
        self._writer = _core.DurableLog(str(self.log_dir), durability, interval_ms, segment_bytes)
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._event_fd: int | None = None  # the eventfd the committer signals (fsync mode)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._in_flight = 0  # fsync-mode appends written and not yet returned
        self._failure_logged = False
        self.segments_deleted = 0

    # ------------------------------------------------------------------ EventLog

    async def append(self, events: Sequence[Accepted]) -> None:
        if not events:
            return
        accepted_at = now_ms()
        encode_record = _core.encode_event_record  # `records.encode` without its Python frame
        try:
            last = self._writer.append([encode_record(a, accepted_at) for a in events])
        except OSError as exc:
            raise self._append_error(exc) from exc
        await self._acknowledge(last)

    async def append_legacy(self, batch: _core.LegacyBatch, fresh: list[bool] | None) -> None:
        """`append` of a fast-path batch: the records are encoded and written in one Rust call."""
        try:
            last = self._writer.append_legacy(batch, now_ms(), fresh)
        except OSError as exc:
            raise self._append_error(exc) from exc
        await self._acknowledge(last)

    async def _acknowledge(self, last: int) -> None:
        """Return once the append that ended at `last` may be acknowledged (see below)."""
        if self.durability != "fsync":
            return
        # Appends return in log order: the caller fans out as soon as this returns, so an append
        # must not overtake an earlier one still waiting for its fsync, or acknowledged but not yet
        # resumed (its wake-up is queued in the loop). Its own record may already be durable
        # here (an fsync round that started after the write finished while the loop thread was
        # descheduled): it still queues behind the earlier ones.
        self._in_flight += 1
        try:
            if self._in_flight > 1 or self._writer.durable_position < last:
                await self._wait(last)
        finally:
            self._in_flight -= 1

    async def barrier(self) -> None:
        """Return once everything written so far is durable; raise if the log has failed.
        A duplicate is acknowledged only after this: its original may still be in an fsync, or
        may have been lost by a failed write (the dedup cache remembers it either way)."""
        error = self._writer.error
        if error is not None:
            raise self._unavailable_error(error)
        last = self._writer.last_position
        if self.durability == "fsync" and self._writer.durable_position < last:
            await self._wait(last)

    async def _wait(self, position: int) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((position, future))
        if self._event_fd is None:
            self._watch(loop)
        elif self._writer.durable_position >= position:
            # Already durable: no fsync will signal the eventfd for it. Resolve it from the loop,
            # after the wake-ups of the earlier waiters already queued there.
            loop.call_soon(self._on_durable)
        await future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._writer.close)  # fsyncs what is written (any policy)
        finally:  # the committer has stopped either way
            if self._event_fd is not None and self._loop is not None:
                self._writer.set_notify_fd(-1)  # nothing writes to it now
                self._loop.remove_reader(self._event_fd)
                os.close(self._event_fd)
                self._event_fd = None
            self._on_durable()  # acknowledges what became durable, or fails the waiters

    # ------------------------------------------------------------------ group-commit acknowledgements

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        loop.add_reader(self._event_fd, self._on_durable)
        self._writer.set_notify_fd(self._event_fd)
        # An fsync may have finished before the fd was set: look once now.
        loop.call_soon(self._on_durable)

    def _on_durable(self) -> None:
        """In the loop: acknowledge every waiter the durable position covers."""
        if self._event_fd is not None:
            try:
                os.eventfd_read(self._event_fd)
            except BlockingIOError:
                pass
        error = self._writer.error
        if error is not None:
            self._fail(self._unavailable_error(error))
            return
        durable = self._writer.durable_position
        waiters = self._waiters
        while waiters and waiters[0][0] <= durable:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _fail(self, exc: LogUnavailableError) -> None:
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(exc)

    def _append_error(self, exc: OSError) -> OSError:
        """What an append that raised `exc` raises: `LogUnavailableError` with the first failure
        as its reason (a later append's own text only says the writer failed earlier), or `exc`
        itself when the log has not failed (a record over 256 MiB; closed at shutdown)."""
        error = self._writer.error
        return exc if error is None else self._unavailable_error(error)

    def _unavailable_error(self, error: str) -> LogUnavailableError:
        """The error for a failed log (`error`: the writer's first failure), logged the first time."""
        if not self._failure_logged:  # once, not once per refused publish
            self._failure_logged = True
            log.error("durable log failed, publishing stops until restart: %s", error)
        return LogUnavailableError(error)

    # ------------------------------------------------------------------ restart recovery

    def recent(self, window_ms: int, max_bytes: int | None = None,
               now: int | None = None) -> Iterator[tuple[Accepted, int]]:
        """(event, accepted_at_ms) of the records in the segments written within `window_ms`, in
        log order, read lazily. With `max_bytes`, only the newest segments holding about that
        many bytes (the hot tier cannot keep more; it bounds start-up time and memory).
        Events whose segment left the window but whose event time is still within retention
        (timestamps in the future) are not restored. Blocking (reads files): call before serving."""
        reader = _core.LogReader(str(self.log_dir))
        start = reader.first_position_since((now_ms() if now is None else now) - window_ms)
        if start is None:
            return
        if max_bytes is not None:
            start = max(start, self._first_position_of_newest(max_bytes))
        after = start - 1
        while batch := reader.read(after, _RESTORE_BATCH):
            for _, payload in batch:
                yield decode_with_time(payload)
            after = batch[-1][0]

    def _first_position_of_newest(self, max_bytes: int) -> int:
        """First position of the oldest of the newest segments that together hold >= max_bytes."""
        total, first = 0, 1
        for path in sorted(self.log_dir.glob("*.seg"), reverse=True):  # names are zero-padded positions
            first = int(path.stem)
            total += path.stat().st_size
            if total >= max_bytes:
                break
        return first

    # ------------------------------------------------------------------ retention and stats

    def maintain(self) -> int:
        """Delete segments the archiver committed and that left the hot window (see
        durable/__init__.py for the position-file contract). Returns segments deleted."""
        position = read_archived_position(self.data_dir)
        if position is None or self._closed:
            return 0
        deleted = self._writer.delete_segments(position, self.hot_retention_ms)
        self.segments_deleted += deleted
        return deleted

    def stats(self) -> dict[str, int | str | None]:
        s: dict[str, int | str | None] = dict(self._writer.stats())
        s["durability"] = self.durability
        s["error"] = self._writer.error  # why the log stopped accepting events, or None
        s["segments_deleted"] = self.segments_deleted
        s["archived_position"] = read_archived_position(self.data_dir)
        return s


def read_archived_position(data_dir: Path) -> int | None:
    """The archiver's last committed log position, or None when it has not written one."""
    try:
        data = orjson.loads((data_dir / ARCHIVER_POSITION_FILE).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("ignoring unreadable %s: %s", ARCHIVER_POSITION_FILE, exc)
        return None
    position = data.get("position") if isinstance(data, dict) else None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        log.warning("ignoring %s without an integer position: %r", ARCHIVER_POSITION_FILE, data)
        return None
    return position
