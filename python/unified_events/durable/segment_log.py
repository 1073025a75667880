"""`SegmentLog`: the `EventLog` of `unified-events serve`, over the Rust segmented log.

The append path never blocks the event loop on an fsync. `append` encodes the batch and writes it
in the loop thread (a page-cache write), then, under `durability = "fsync"`, awaits a future.
One notifier thread waits (GIL released) for the Rust committer to advance the durable position
and resolves, in the loop, every future whose last position it covers: one fsync acknowledges
every batch written before it started (group commit). Under `interval` and `none` the append
returns once written.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from pathlib import Path
from typing import Sequence

import orjson

from .. import _core
from ..events import Accepted, now_ms
from .records import decode_with_time, encode

log = logging.getLogger("unified_events")

LOG_SUBDIR = "log"
ARCHIVER_POSITION_FILE = Path("archiver") / "position.json"
_NOTIFIER_WAIT_MS = 500  # how long the notifier blocks before checking whether the log closed
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notifier: threading.Thread | None = None
        self._closed = False
        self.segments_deleted = 0

    # ------------------------------------------------------------------ EventLog

    async def append(self, events: Sequence[Accepted]) -> None:
        if not events:
            return
        accepted_at = now_ms()
        last = self._writer.append([encode(a, accepted_at) for a in events])
        if self.durability != "fsync" or self._writer.durable_position >= last:
            return
        loop = asyncio.get_running_loop()
        if self._notifier is None:
            self._start_notifier(loop)
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((last, future))
        await future

    async def close(self) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._writer.close)  # fsyncs what is written (any policy)
        self._closed = True
        self._resolve(self._writer.durable_position)
        if self._notifier is not None:
            await loop.run_in_executor(None, self._notifier.join)

    # ------------------------------------------------------------------ group-commit acknowledgements

    def _start_notifier(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._notifier = threading.Thread(target=self._notify, name="ue-log-notify", daemon=True)
        self._notifier.start()

    def _notify(self) -> None:
        """Notifier thread: report each advance of the durable position to the loop."""
        assert self._loop is not None
        # Start from 0, not the current position: the fsync covering the first waiter may have
        # finished before this thread got here, and its report must still reach the loop.
        seen = 0
        while not self._closed:
            try:
                durable = self._writer.wait_durable(seen + 1, _NOTIFIER_WAIT_MS)
            except OSError as exc:
                self._loop.call_soon_threadsafe(self._fail, exc)
                return
            if durable > seen:
                seen = durable
                self._loop.call_soon_threadsafe(self._resolve, durable)

    def _resolve(self, durable: int) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= durable:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _fail(self, exc: OSError) -> None:
        log.error("durable log failed, publishing stops until restart: %s", exc)
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(exc)

    # ------------------------------------------------------------------ restart recovery

    def recent(self, window_ms: int, now: int | None = None) -> list[tuple[Accepted, int]]:
        """(event, accepted_at_ms) of every record in the segments written within `window_ms`,
        in log order. Blocking (reads files): call it before serving."""
        reader = _core.LogReader(str(self.log_dir))
        start = reader.first_position_since((now_ms() if now is None else now) - window_ms)
        out: list[tuple[Accepted, int]] = []
        if start is None:
            return out
        after = start - 1
        while batch := reader.read(after, _RESTORE_BATCH):
            out.extend(decode_with_time(payload) for _, payload in batch)
            after = batch[-1][0]
        return out

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
