"""The archiver: log -> batches -> one Iceberg append per batch, exactly once.

Exactly once: every commit to the events table carries, in its snapshot summary, the position of
the last log record the batch covers (`POSITION_PROPERTY`). Data and position land in one atomic
catalog commit, so after any crash the table itself says where to resume: nothing committed is
read again, nothing uncommitted is skipped. Poison records go to the dead-letter table first, in a
commit that carries its own position; when a batch is redone after a crash between the two commits,
dead letters at or below that position are not written again.

Only one archiver may write a table: a lock file under `<data_dir>/archiver/` keeps a second one
waiting (on the same host). After each commit the archiver writes `position.json` (the log may
delete segments at or below it) and `status.json` (position, lag, errors: read by /metrics, /health).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
from pyiceberg.table import Table

from ..config import Config
from .convert import convert_batch
from .fast import convert_raw
from .partitions import contiguous_partitions
from .schema import POSITION_PROPERTY, arrow_schema, dead_letter_arrow_schema
from .source import LogSource, Records
from .status import archiver_dir, write_json_atomic
from .writer import append_sorted

log = logging.getLogger("unified_events.archiver")

_MAX_BACKOFF_S = 30.0


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic GC off for the block. A batch read from an NDJSON file allocates ~100k tuples
    (and, on the Python conversion path, ~100k dicts and lists) that all live until it is
    converted: the GC would traverse them again and again (measured: 3x the cost of parsing the
    frames on the Python path). Nothing here makes reference cycles, so collection waits until
    the block is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def committed_position(table: Table) -> int | None:
    """The log position of the newest snapshot (walking back through its ancestors) that has one."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        value = snapshot.summary.additional_properties.get(POSITION_PROPERTY) if snapshot.summary else None
        if value is not None:
            return int(value)
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return None


@dataclass
class Stats:
    position: int | None = None          # last log position committed to the events table
    read_position: int | None = None     # last log position read into the batch
    pending_events: int = 0
    oldest_pending_at: float | None = None  # wall time the oldest pending record was read
    committed_at_ms: int | None = None
    last_commit_rows: int = 0
    last_commit_s: float = 0.0
    rows_total: int = 0
    commits_total: int = 0
    dead_letters_total: int = 0
    errors_total: int = 0
    last_error: str | None = None
    last_error_at_ms: int | None = None
    caught_up: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Work:
    """A converted batch, ready to commit."""

    table: pa.Table | None
    rows: int
    dead: list[tuple[int, str | None, str, bytes]]
    end: int          # log position of the batch's last record
    started: float    # perf_counter when its conversion started


class Archiver:
    def __init__(self, config: Config, source: LogSource, events: Table, dead: Table) -> None:
        self.config = config
        self.cold = config.cold
        self.source = source
        self.events = events
        self.dead = dead
        self.dir = archiver_dir(config)
        self.stats = Stats()
        self.stop_requested = False
        self._batch: list[Records] = []  # the reads since the last flush, in log order
        self._batch_started = 0.0
        self._dead_position: int | None = None
        self._last_status = 0.0
        # Scheduled maintenance; called only when nothing is buffered, so it never races an append.
        self.on_idle: Callable[[], None] | None = None
        self._keep_running: Callable[[], bool] | None = None
        # Durable-log records go through the Rust fast path (cold/fast.py); False = the reference
        # Python conversion only (same table; the benchmark compares the two).
        self.fast_convert = True
        # Split the sorted table into partitions by slicing (cold/partitions.py); False = pyiceberg's
        # per-partition filter (same files' contents; the benchmark compares the two).
        self.slice_partitions = True
        # Events are appended by cold/writer.py (Parquet files written once per partition in
        # parallel, then one pyiceberg commit); False = pyiceberg's `append` (same table contents).
        self.write_files = True
        # Commit each batch on a committer thread while the next one is read and converted (the
        # conversion runs in Rust without the GIL); False = convert and commit in turn.
        self.overlap_commits = True
        self._committer: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None
        self._committing_oldest: float | None = None  # oldest_pending_at of the batch committing
        # position.json and status.json are written by both threads: one at a time (same temp name).
        self._files_lock = threading.Lock()

    # --- lifecycle

    def resume(self) -> None:
        """Read where the tables say we are; nothing is buffered yet."""
        self.events.refresh()
        self.dead.refresh()
        self.stats.position = committed_position(self.events)
        self._dead_position = committed_position(self.dead)
        self.stats.read_position = self.stats.position
        log.info("archiver: resuming after log position %s (%s)", self.stats.position, self.source.describe())
        head = self._head()
        if head is not None and self.stats.position is not None and head < self.stats.position:
            # Positions are never reused, so this log is not the one the table was filled from:
            # its events up to the table's position would be skipped. Say so loudly.
            self.record_error(f"the log ends at position {head} but the table already holds up to "
                              f"{self.stats.position}: was the log directory replaced? Events up to "
                              f"{self.stats.position} in this log will not be archived")
        self._write_position()
        self.write_status(force=True)

    def run(self, exit_when_caught_up: bool = False, keep_running: Callable[[], bool] | None = None) -> None:
        """Archive until `stop_requested` (or, with `exit_when_caught_up`, until the source is drained)."""
        self._keep_running = keep_running
        self.resume()
        poll_s = self.cold.poll_interval_ms / 1000
        while not self.stop_requested and (keep_running is None or keep_running()):
            got = self.fill()
            if self._due() or (exit_when_caught_up and got == 0 and self._batch):
                self.flush()  # with overlap_commits, the batch commits while we read the next
                continue
            if got == 0:
                if exit_when_caught_up:
                    break
                if self.on_idle is not None and not self._batch:
                    self.wait_for_commit()
                    self.on_idle()
                self.write_status()
                time.sleep(poll_s)
        self.wait_for_commit()
        self.write_status(force=True)

    # --- reading and flushing

    def fill(self) -> int:
        """Read what the source has, up to the batch limits; returns the number of records read."""
        room = self.cold.batch_rows - self._batch_rows
        room_bytes = self.cold.batch_bytes - self._batch_bytes
        if room <= 0 or room_bytes <= 0:
            return 0
        with _gc_paused():  # an NDJSON source makes ~100k (position, payload) tuples: see flush
            records = self.source.read(self.stats.read_position, room, room_bytes)
        got = len(records)
        if got:
            if not self._batch:
                self._batch_started = time.time()
                accepted_ms = self.source.accepted_at_ms(records.payload(0))
                self.stats.oldest_pending_at = time.time() if accepted_ms is None else accepted_ms / 1000
            self._batch.append(records)
            self.stats.read_position = records.position(got - 1)
            self.stats.pending_events = self._batch_rows
        self.stats.caught_up = got < room
        return got

    @property
    def _batch_rows(self) -> int:
        return sum(len(part) for part in self._batch)

    @property
    def _batch_bytes(self) -> int:
        return sum(part.nbytes for part in self._batch)

    def _due(self) -> bool:
        if not self._batch:
            return False
        if self._batch_rows >= self.cold.batch_rows or self._batch_bytes >= self.cold.batch_bytes:
            return True
        return time.time() - self._batch_started >= self.cold.flush_interval_s

    def flush(self) -> None:
        """Convert the buffered batch, then commit it: dead letters, then the events with the
        batch's end position. With `overlap_commits` the commit runs on the committer thread
        while the caller reads (and converts) the next batch; commits stay one at a time, in log
        order, so what each commit records is exactly as without overlap."""
        if not self._batch:
            return
        with _gc_paused():
            work = self._convert()
        # The records are converted: the next batch may be read (fill) while this one commits.
        oldest = self.stats.oldest_pending_at
        self._batch = []
        self.stats.pending_events = 0
        self.stats.oldest_pending_at = None
        self.wait_for_commit()  # the previous batch's: commits never run two at a time
        self._committing_oldest = oldest  # for the lag in status.json until this batch commits
        # Nothing is in flight: the moment for scheduled maintenance, which a steady stream would
        # otherwise never leave idle time for (it runs between two commits, never during one).
        if self.on_idle is not None:
            self.on_idle()
        if self.overlap_commits:
            if self._committer is None:
                self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archiver-commit")
            self._pending = self._committer.submit(self._commit_batch, work)
        else:
            self._commit_batch(work)

    def wait_for_commit(self) -> None:
        """Wait until the batch handed to the committer thread (if any) has committed; a failure
        there (e.g. SystemExit after a stop request during retries) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _convert(self) -> _Work:
        last = self._batch[-1]
        end = last.position(len(last) - 1)
        started = time.perf_counter()
        if self.fast_convert and getattr(self.source, "records_are_log_payloads", False):
            converted = convert_raw(self._batch, self.source.decode)
            dead = list(converted.dead)
        else:
            decoded, dead = [], []
            for position, raw in (record for part in self._batch for record in part.records()):
                try:
                    decoded.append((position, *self.source.decode(raw)))
                except Exception as exc:  # noqa: BLE001 - an undecodable record is a poison record
                    dead.append((position, None, f"cannot decode the log record: {type(exc).__name__}: {exc}", raw))
            converted = convert_batch(decoded)
            dead.extend(converted.dead)
        return _Work(converted.table, converted.rows, dead, end, started)

    def _commit_batch(self, work: _Work) -> None:
        # Dead letters at or below the dead-letter table's position were written before a crash
        # (this batch is being redone): not again. Read here, as the previous commit may move it.
        dead = [d for d in work.dead if self._dead_position is None or d[0] > self._dead_position]
        end = work.end
        if dead:
            self._commit(self.dead, _dead_letter_table(sorted(dead, key=lambda d: d[0])), end)
            self._dead_position = end
            self.stats.dead_letters_total += len(dead)
            for position, event_id, reason, _ in dead[:5]:
                log.warning("archiver: dead-lettered log position %d (id %s): %s", position, event_id, reason)
        table = work.table
        if table is None:  # every record was poison: an empty append still moves the position on
            table = arrow_schema().empty_table()
        self._commit(self.events, table, end)
        elapsed = time.perf_counter() - work.started
        self.stats.position = end
        self.stats.committed_at_ms = time.time_ns() // 1_000_000
        self.stats.last_commit_rows = work.rows
        self.stats.last_commit_s = elapsed
        self.stats.rows_total += work.rows
        self.stats.commits_total += 1
        self._committing_oldest = None
        self._write_position()
        self.write_status(force=True)
        log.info("archiver: committed %d events (%d dead-lettered) up to log position %d in %.2f s",
                 work.rows, len(dead), end, elapsed)

    def _commit(self, table: Table, data: pa.Table, end: int) -> None:
        """Append with `end` in the snapshot summary; retry with backoff until it lands. A failed
        call may still have committed (e.g. the connection dropped after the catalog update), so
        before each retry the table is re-read: if it already holds `end`, we are done."""
        backoff = 0.5
        while True:
            try:
                properties = {POSITION_PROPERTY: str(end)}
                if self.write_files and table is self.events:
                    append_sorted(table, data, properties)  # our Parquet writes, one commit (cold/writer.py)
                else:
                    # Our tables arrive sorted by partition: split them by slicing (cold/partitions.py).
                    with contiguous_partitions() if self.slice_partitions else contextlib.nullcontext():
                        table.append(data, snapshot_properties=properties)
                return
            except Exception as exc:  # noqa: BLE001 - any failure is retried, and reported
                self.record_error(f"commit to {'.'.join(table.name())} failed: {type(exc).__name__}: {exc}")
            try:
                table.refresh()
                landed = committed_position(table)
                if landed is not None and landed >= end:
                    log.warning("archiver: the failed commit had landed (position %d); not retrying", landed)
                    return
            except Exception as exc:  # noqa: BLE001
                self.record_error(f"cannot re-read {'.'.join(table.name())}: {type(exc).__name__}: {exc}")
            self.write_status(force=True)
            if self.stop_requested or (self._keep_running is not None and not self._keep_running()):
                raise SystemExit(1)  # the batch stays in the log; the next archiver redoes it
            self._sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up within 0.1 s of a stop request (SIGTERM must not wait out a 30 s backoff)."""
        deadline = time.monotonic() + seconds
        while not self.stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _head(self) -> int | None:
        try:
            return self.source.head()
        except Exception:  # noqa: BLE001 - status is best effort
            return None

    def record_error(self, message: str) -> None:
        log.error("archiver: %s", message)
        self.stats.errors_total += 1
        self.stats.last_error = message.splitlines()[0][:500]  # drivers append whole SQL statements
        self.stats.last_error_at_ms = time.time_ns() // 1_000_000

    # --- files the server reads

    def _write_position(self) -> None:
        if self.stats.position is None:
            return
        with self._files_lock:
            write_json_atomic(self.dir / "position.json",
                              {"position": self.stats.position, "committed_at_ms": self.stats.committed_at_ms})

    def write_status(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_status < 1.0:
            return
        self._last_status = now
        s = self.stats
        # Lag: events in the log not yet committed (all of them when the source knows its head),
        # and the age of the oldest of them (from its acceptance time when the log records it).
        head = self._head()
        lag_events = s.pending_events if head is None else max(0, head - (s.position or 0))
        pending = [t for t in (self._committing_oldest, s.oldest_pending_at) if t is not None]
        lag_s = round(max(0.0, now - min(pending)), 3) if pending else 0.0
        status = {
            "pid": os.getpid(), "updated_at_ms": int(now * 1000), "source": self.source.describe(),
            "position": s.position, "read_position": s.read_position, "caught_up": s.caught_up,
            "head_position": head, "lag_events": lag_events, "lag_seconds": lag_s,
            "last_commit_at_ms": s.committed_at_ms, "last_commit_rows": s.last_commit_rows,
            "last_commit_seconds": round(s.last_commit_s, 3), "rows_total": s.rows_total,
            "commits_total": s.commits_total, "dead_letters_total": s.dead_letters_total,
            "errors_total": s.errors_total, "last_error": s.last_error, "last_error_at_ms": s.last_error_at_ms,
            **s.extra,
        }
        with self._files_lock:
            write_json_atomic(self.dir / "status.json", status, fsync=False)  # informational: no fsync


def _dead_letter_table(dead: list[tuple[int, str | None, str, bytes]]) -> pa.Table:
    now = time.time_ns() // 1000
    return pa.Table.from_pydict({
        "log_position": [d[0] for d in dead],
        "id": [d[1] for d in dead],
        "reason": [d[2] for d in dead],
        "payload": [d[3].decode("utf-8", "replace") for d in dead],
        "failed_at": pa.array([now] * len(dead), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    }, schema=dead_letter_arrow_schema())


class ArchiverLock:
    """An exclusive flock on `<data_dir>/archiver/lock`: one archiver (and maintenance) at a time."""

    def __init__(self, config: Config) -> None:
        self.path = archiver_dir(config) / "lock"
        self._fh: Any = None

    def acquire(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        warned = False
        while True:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fh.seek(0)
                self._fh.truncate()
                self._fh.write(str(os.getpid()))
                self._fh.flush()
                return True
            except BlockingIOError:
                if not wait:
                    return False
                if not warned and on_wait is not None:
                    on_wait(self.holder())
                    warned = True
                time.sleep(0.2)

    def holder(self) -> str:
        try:
            return Path(self.path).read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

