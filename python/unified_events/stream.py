"""EventStream: the engine without sockets. The server is a thin adapter over it.

Data flows one way: a body is accepted (validated, framed and serialised once), checked against
the dedup cache, appended to the event log (the durability seam), stored in the hot tier, and
queued by the Rust hub for every matching connection. Once per loop tick `_flush` takes each
connection's queued frames as one buffer and writes it: one write per connection per tick.

Events from other nodes will enter at `deliver`, after the log, like local ones.
Everything here runs on the event loop thread; nothing is locked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import orjson

from . import _core, codes
from .config import Config
from .errors import EventValidationError, LogUnavailableError, ShuttingDownError
from .eventlog import EventLog, MemoryOnlyLog
from .events import (
    Accepted, error_event, generate_id, iso_from_ms, now_ms, parse_body, parse_timestamp_ms, topic_error,
)
from .cold.status import StatusReader
from .metrics import Metrics, process_usage, prometheus_text

if TYPE_CHECKING:
    from .sql.engine import SqlEngine
    from .sql.live import LiveQueries

log = logging.getLogger("unified_events")

__version__ = "0.1.0"

# A validator gets a token and returns a bool or {"valid": bool, "allowedTopics": [...], "error": str}.
TokenValidator = Callable[[str], "bool | dict[str, Any] | Awaitable[bool | dict[str, Any]]"]

_SLOW_CONSUMER_CHECK_S = 0.25
# Structured-query filters: the core indexes the first group; the second is checked on each row.
_INDEXED_FILTERS = ("event_type", "trace_id", "session_id", "correlation_id", "ns")
_ROW_FILTERS = ("service_name", "log_level")


class Sink(Protocol):
    """Where a connection's frames go: a WebSocket transport, or an in-process subscriber."""

    def write(self, data: bytes) -> None: ...
    def close(self, code: int, reason: str) -> None: ...


@dataclass(slots=True, eq=False)
class Connection:
    conn_id: int
    connection_id: str
    sink: Sink
    allowed_topics: list[str] | None = None
    closed: bool = False


@dataclass(slots=True)
class TopicStats:
    """What the hub does not know about a subscription key: traffic, and when it emptied."""

    message_count: int = 0
    last_message_at: int | None = None
    empty_at: int | None = None


@dataclass(slots=True)
class PublishResult:
    id: str
    topic: str
    event_type: str
    duplicate: bool
    delivered_to: int


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class EventStream:
    def __init__(
        self,
        config: Config | None = None,
        *,
        event_log: EventLog | None = None,
        token_validator: TokenValidator | None = None,
        refresh_validator: TokenValidator | None = None,
    ) -> None:
        self.config = config or Config()
        self.token_validator = token_validator
        self.refresh_validator = refresh_validator
        self.counters = Metrics()
        self._log: EventLog = event_log or MemoryOnlyLog()
        cfg = self.config
        self.hub = _core.Hub(
            cfg.rate_limit.messages_per_second, cfg.rate_limit.burst_size, cfg.max_queued_bytes,
            cfg.max_pending_messages, cfg.slow_consumer_timeout_ms,
        )
        self.hot = _core.HotTier(cfg.hot_tier_retention_ms, cfg.hot_tier_max_bytes)
        self.dedup = _core.DedupCache(cfg.dedup_window_ms, cfg.dedup_max_entries)
        self._conns: dict[int, Connection] = {}
        self._next_conn_id = 1
        self._topic_stats: dict[str, TopicStats] = {}
        self._flush_scheduled = False
        self._unflushed: list[float] = []  # acceptance times of events not yet written
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}  # the pending run of each periodic task
        self.shutting_down = False
        self.started = False
        self._sql: SqlEngine | None = None
        self._live: LiveQueries | None = None
        self._archiver_status = StatusReader(self.config.data_dir)  # the archiver's status.json

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        from .security import check_startup

        check_startup(self)  # require_auth without a key, production without auth: refuse with a reason
        self._loop = asyncio.get_running_loop()
        self.started = True
        self._schedule(self.config.cleanup_interval_ms / 1000, self._cleanup_tick)
        self._schedule(_SLOW_CONSUMER_CHECK_S, self._slow_consumer_tick)

    async def stop(self, drain_timeout_ms: int | None = None) -> None:
        """Graceful shutdown: a `shutdown` frame to everyone, wait for clients to leave (up to the
        drain timeout), then close the rest with 1001."""
        if not self.started:
            return
        self.shutting_down = True
        timeout = (self.config.drain_timeout_ms if drain_timeout_ms is None else drain_timeout_ms) / 1000
        notice = orjson.dumps({"type": "shutdown", "reason": codes.SHUTDOWN_REASON})
        for conn in list(self._conns.values()):
            self.send_control(conn, notice)
        deadline = time.monotonic() + timeout
        while self._conns and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self._conns.values()):
            conn.sink.close(codes.CLOSE_SHUTDOWN, codes.SHUTDOWN_CLOSE_REASON)
            self.close_connection(conn)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        try:
            await self._log.close()
        except OSError as exc:  # its final fsync failed (the error says why): the rest must still stop
            log.error("durable log: closing it failed: %s", exc)
        if self._live is not None:
            self._live.close()
        if self._sql is not None:
            self._sql.close()
        self.started = False

    def _schedule(self, delay_s: float, callback: Callable[[], None]) -> None:
        assert self._loop is not None
        self._timers[callback.__name__] = self._loop.call_later(delay_s, callback)

    # ------------------------------------------------------------------ publishing

    async def publish(self, event: dict[str, Any], topic: str | None = None, *, to_all: bool = False,
                      ) -> PublishResult:
        """Accept one event body (legacy or UnifiedEvent). `topic` overrides a legacy body's topic."""
        if topic is not None and not (event.get("event_type") or event.get("event_name")):
            event = {"topic": topic, "event": event}
        results = await self.publish_many([event], to_all=to_all)
        result = results[0]
        if isinstance(result, EventValidationError):
            raise result
        return result

    async def publish_many(self, bodies: Sequence[Any], *, to_all: bool = False,
                           ) -> list[PublishResult | EventValidationError]:
        """Accept a batch: each body is validated alone; one log append covers the batch.
        `to_all` sends to every connection whatever it subscribes to (see `broadcast_all`)."""
        if self.shutting_down:
            raise ShuttingDownError(codes.SHUTTING_DOWN)
        results: list[PublishResult | EventValidationError] = []
        fresh: list[tuple[Accepted, PublishResult]] = []
        wall = now_ms()
        for body in bodies:
            try:
                accepted = parse_body(body)
            except EventValidationError as exc:
                results.append(exc)
                continue
            duplicate = self.dedup.check_and_insert(accepted.topic, accepted.id, wall)
            result = PublishResult(accepted.id, accepted.topic, accepted.event_type, duplicate, 0)
            results.append(result)
            if duplicate:
                self.counters.dedup_hits += 1
            else:
                fresh.append((accepted, result))
        if fresh:
            await self._log.append([accepted for accepted, _ in fresh])
            for accepted, result in fresh:
                result.delivered_to = self.deliver(accepted, to_all=to_all)
        if len(fresh) < len(results):
            # A duplicate is acknowledged only once its original is durable (the log's barrier).
            if any(isinstance(r, PublishResult) and r.duplicate for r in results):
                await self._log.barrier()
        return results

    async def publish_legacy_batch(self, batch: _core.LegacyBatch) -> list[bool]:
        """`publish_many` for a batch the Rust fast path accepted whole (`_core.accept_legacy_batch`):
        the same steps in the same order, one Rust call per step instead of one per event.
        Returns each event's duplicate flag."""
        if self.shutting_down:
            raise ShuttingDownError(codes.SHUTTING_DOWN)
        duplicates = batch.check_dedup(self.dedup, now_ms())
        duplicate_count = sum(duplicates)
        fresh = [not d for d in duplicates] if duplicate_count else None
        self.counters.dedup_hits += duplicate_count
        if duplicate_count < len(duplicates):
            await self._log.append_legacy(batch, fresh)
            self._deliver_legacy(batch, fresh, len(duplicates) - duplicate_count)
        if duplicate_count:
            # A duplicate is acknowledged only once its original is durable (the log's barrier).
            await self._log.barrier()
        return duplicates

    def _deliver_legacy(self, batch: _core.LegacyBatch, fresh: list[bool] | None, count: int) -> None:
        """`deliver` for the fresh events of a fast-path batch, already durable."""
        self.hot.insert_legacy(batch, fresh)
        self.counters.events_accepted += count
        self.counters.last_event_at_ms = batch.last_timestamp_ms(fresh)
        if not self._conns and not self._topic_stats:
            return  # nobody to queue for and no topic traffic to count: the frames stay in Rust
        for topic, frame in batch.frames(fresh):
            self._published(topic, self.hub.publish(topic, frame, monotonic_ms()))

    def deliver(self, accepted: Accepted, *, to_all: bool = False) -> int:
        """Store and fan out an event that is already durable. Returns connections it was queued for."""
        self._store_hot(accepted)
        self.counters.events_accepted += 1
        self.counters.last_event_at_ms = accepted.timestamp_ms
        if to_all:
            count = self.hub.publish_all(accepted.frame, monotonic_ms())
        else:
            count = self.hub.publish(accepted.topic, accepted.frame, monotonic_ms())
        self._published(accepted.topic, count)
        return count

    def _published(self, topic: str, queued: int) -> None:
        """Bookkeeping after an event was handed to the hub: topic stats, and a flush of the
        connections it was queued for."""
        stats = self._topic_stats.get(topic)
        if stats is not None:
            stats.message_count += 1
            stats.last_message_at = now_ms()
        if queued:
            self.counters.record_sent()
            self._unflushed.append(time.perf_counter())
            self._schedule_flush()

    def _store_hot(self, accepted: Accepted) -> None:
        self.hot.insert(
            accepted.id, accepted.topic, accepted.event_type, accepted.ns, accepted.timestamp_ms,
            accepted.trace_id, accepted.session_id, accepted.correlation_id, accepted.frame, accepted.record,
        )

    def restore(self, events: Iterable[tuple[Accepted, int]], now: int | None = None) -> int:
        """After a restart: put events read back from the durable log, as (event, accepted_at_ms)
        in log order, into the hot tier and the dedup window, without fan-out. Call before
        `start`. Returns how many remain in the hot tier after retention."""
        for accepted, accepted_at_ms in events:
            self.dedup.check_and_insert(accepted.topic, accepted.id, accepted_at_ms)
            self._store_hot(accepted)
        now = now_ms() if now is None else now
        self.hot.evict_expired(now)
        self.dedup.prune(now)
        return len(self.hot)

    async def broadcast_all(self, event: dict[str, Any]) -> PublishResult:
        """The original `broadcast()`: send to every connection whatever it subscribes to."""
        return await self.publish(event, to_all=True)

    async def publish_error(self, code: str, message: str, event_id: str | None = None,
                            context: Any = None, severity: str | None = None) -> PublishResult:
        """The original `broadcastError`: an `error` event on the `_errors` topic."""
        return await self.publish(error_event(code, message, event_id, context, severity))

    # ------------------------------------------------------------------ connections

    def can_accept_connection(self) -> bool:
        return not self.shutting_down and len(self._conns) < self.config.max_connections

    def would_exceed_topics(self, topics: Sequence[str]) -> bool:
        new_keys = {t for t in topics if self.hub.subscriber_count(t) == 0}
        return self.hub.key_count() + len(new_keys) > self.config.max_topics

    def open_connection(self, sink: Sink, allowed_topics: list[str] | None = None) -> Connection:
        conn = Connection(self._next_conn_id, generate_id(), sink, allowed_topics)
        self._next_conn_id += 1
        self._conns[conn.conn_id] = conn
        self.hub.add_connection(conn.conn_id, monotonic_ms())
        self.counters.total_connections += 1
        return conn

    def close_connection(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        keys = self.hub.subscriptions(conn.conn_id)
        self.hub.remove_connection(conn.conn_id)
        self._conns.pop(conn.conn_id, None)
        for key in keys:
            self._note_unsubscribed(key)

    def add_subscription(self, conn: Connection, topic: str) -> bool:
        added = self.hub.subscribe(conn.conn_id, topic)
        if added:
            self._topic_stats.setdefault(topic, TopicStats()).empty_at = None
        return added

    def remove_subscription(self, conn: Connection, topic: str) -> bool:
        removed = self.hub.unsubscribe(conn.conn_id, topic)
        if removed:
            self._note_unsubscribed(topic)
        return removed

    def _note_unsubscribed(self, key: str) -> None:
        stats = self._topic_stats.get(key)
        if stats is None or self.hub.subscriber_count(key) > 0:
            return
        if self.config.topic_ttl > 0:
            stats.empty_at = now_ms()
        else:
            del self._topic_stats[key]

    def send_control(self, conn: Connection, payload: bytes) -> None:
        """Queue a frame for one connection, in order with its events (bypasses rate limit and caps)."""
        if conn.closed:
            return
        self.hub.send_control(conn.conn_id, payload)
        self._schedule_flush()

    def set_writable(self, conn: Connection, writable: bool) -> None:
        if conn.closed:
            return
        self.hub.set_writable(conn.conn_id, writable)
        if writable:
            self._schedule_flush()

    def replay(self, conn: Connection, patterns: list[str], last_event_id: str | None,
               from_timestamp: int | None) -> int:
        """Queue the hot-tier events a reconnecting client missed (original §3.7, every pattern)."""
        frames: list[bytes] | None = None
        if last_event_id:
            frames = self.hot.replay_after_id(last_event_id, patterns)
        elif from_timestamp is not None:
            if from_timestamp < now_ms() - self.config.hot_tier_retention_ms:
                self.send_control(conn, orjson.dumps({
                    "type": "warning", "code": codes.REPLAY_TRUNCATED, "message": codes.REPLAY_TRUNCATED_MESSAGE,
                }))
            frames = self.hot.replay_after_time(from_timestamp, patterns)
        for frame in frames or ():
            self.hub.send_control(conn.conn_id, frame)
        if frames:
            self._schedule_flush()
        return len(frames or ())

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # ------------------------------------------------------------------ the flush (one write per connection per tick)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        conns = self._conns
        for conn_id, data in self.hub.drain(self.config.fan_out.batch_size):
            conn = conns.get(conn_id)
            if conn is not None:
                try:
                    conn.sink.write(data)
                except Exception:  # a broken socket must not stop the others
                    self.counters.error_count += 1
                    log.debug("write to %s failed", conn.connection_id, exc_info=True)
        if self.hub.has_pending():
            # Yield to the loop between batches of connections (fan_out.batch_size / yield_interval_ms).
            assert self._loop is not None
            self._flush_scheduled = True
            delay = self.config.fan_out.yield_interval_ms / 1000
            if delay > 0:
                self._loop.call_later(delay, self._flush)
            else:
                self._loop.call_soon(self._flush)
            return
        if self._unflushed:
            done = time.perf_counter()
            for accepted_at in self._unflushed:
                self.counters.record_latency((done - accepted_at) * 1000)
            self._unflushed.clear()

    # ------------------------------------------------------------------ timers

    def _cleanup_tick(self) -> None:
        self.run_cleanup()
        if self.started:
            self._schedule(self.config.cleanup_interval_ms / 1000, self._cleanup_tick)

    def run_cleanup(self, now: int | None = None) -> dict[str, int]:
        """Retention, dedup window and topic-stat TTL (original §5.2)."""
        now = now_ms() if now is None else now
        expired = self.hot.evict_expired(now)
        pruned = self.dedup.prune(now)
        ttl = self.config.topic_ttl
        stale = [k for k, s in self._topic_stats.items()
                 if ttl > 0 and s.empty_at is not None and now - s.empty_at > ttl]
        for key in stale:
            del self._topic_stats[key]
        result = {"expired_events": expired, "pruned_dedup": pruned, "dropped_topic_stats": len(stale)}
        try:
            result["deleted_log_segments"] = self._log.maintain()  # durable-log segment retention
        except OSError:
            log.exception("durable log retention failed")
        return result

    def _slow_consumer_tick(self) -> None:
        for conn_id in self.hub.take_slow_consumers(monotonic_ms()):
            conn = self._conns.get(conn_id)
            if conn is not None:
                self.counters.slow_consumer_closes += 1
                log.info("closing slow consumer %s", conn.connection_id)
                conn.sink.close(codes.CLOSE_SLOW_CONSUMER, codes.SLOW_CONSUMER_REASON)
                self.close_connection(conn)
        if self.started:
            self._schedule(_SLOW_CONSUMER_CHECK_S, self._slow_consumer_tick)

    # ------------------------------------------------------------------ in-process subscribers

    async def subscribe(self, *patterns: str, max_buffered: int = 10_000) -> AsyncIterator[dict[str, Any]]:
        """Receive events matching any pattern, as the dicts a WebSocket client would get."""
        for pattern in patterns:
            problem = topic_error(pattern)
            if problem is not None:
                raise ValueError(f"Invalid topic: {problem}")
        sink = _LocalSink(self, max_buffered)
        conn = self.open_connection(sink)
        sink.conn = conn
        for pattern in patterns:
            self.add_subscription(conn, pattern)
        try:
            while True:
                item = await sink.queue.get()
                if item is None:
                    return
                sink.on_consumed()
                yield item
        finally:
            self.close_connection(conn)

    # ------------------------------------------------------------------ queries and stats

    def query_unified(self, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Structured filter query (original §5.5): equality filters, timestamp_after, limit; newest first."""
        filters = filters or {}
        wanted = {k: v for k in _INDEXED_FILTERS + _ROW_FILTERS if isinstance(v := filters.get(k), str) and v}
        after = filters.get("timestamp_after")
        after_ms = parse_timestamp_ms(after, "timestamp_after") if after else None
        limit = filters.get("limit") or None
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise EventValidationError("limit must be a non-negative integer")
        indexed = {k: v for k, v in wanted.items() if k in _INDEXED_FILTERS}
        by_row = {k: v for k, v in wanted.items() if k in _ROW_FILTERS}
        # The core applies the limit only when it sees every filter.
        records = self.hot.query(indexed, after_ms, None if by_row else limit)
        rows = [orjson.loads(r) for r in records]
        if by_row:
            rows = [r for r in rows if all(r.get(k) == v for k, v in by_row.items())][:limit]
        return rows

    @property
    def sql(self) -> SqlEngine:
        """The SQL engine over the hot tier, created at first use (DuckDB loads lazily)."""
        if self._sql is None:
            from .sql.engine import SqlEngine

            q = self.config.query
            self._sql = SqlEngine(self.hot, q.timeout_ms, q.max_rows, q.memory_limit_mb, q.threads, q.max_waiting,
                                  q.worker_nice)
        return self._sql

    @property
    def live_queries(self) -> LiveQueries:
        """Live SQL subscriptions of WebSocket connections (subscribe_query)."""
        if self._live is None:
            from .sql.live import LiveQueries

            self._live = LiveQueries(self)
        return self._live

    async def query(self, sql: str, params: Sequence[Any] | None = None) -> dict[str, Any]:
        """Run a read-only SQL query over the hot tier: {"rows", "columns", "row_count", "elapsed_ms",
        "truncated"?}. Raises EventValidationError for a refused query, and the errors of sql.engine."""
        result = await self.sql.run(sql, list(params) if params is not None else None)
        return {**result.body(), "rows": result.rows()}

    def events_for(self, field: str, value: str) -> list[dict[str, Any]]:
        """All hot events with `field == value`, newest first."""
        return self.query_unified({field: value})

    def topic_stats(self, topic: str) -> dict[str, Any] | None:
        stats = self._topic_stats.get(topic)
        if stats is None:
            return None
        out: dict[str, Any] = {"subscribers": self.hub.subscriber_count(topic), "messageCount": stats.message_count}
        if stats.last_message_at is not None:
            out["lastMessageAt"] = stats.last_message_at
        if stats.empty_at is not None:
            out["emptyAt"] = stats.empty_at
        return out

    def stats(self) -> dict[str, int]:
        return {"connectionCount": len(self._conns), "topicCount": self.hub.key_count()}

    def metrics(self) -> dict[str, Any]:
        """The /metrics JSON: the original's keys, then ours."""
        m = self.counters
        hub = self.hub.stats()
        return {
            "activeConnections": len(self._conns),
            "totalConnections": m.total_connections,
            "messagesSent": m.messages_sent,
            "messagesPerSecond": m.messages_per_second(),
            "errorCount": m.error_count,
            "parseErrors": m.parse_errors,
            "topicStats": {key: {"subscribers": n} for key, n in self.hub.keys()},
            "latencyP50": m.percentile(0.50),
            "latencyP95": m.percentile(0.95),
            "latencyP99": m.percentile(0.99),
            "topicCount": self.hub.key_count(),
            "eventsAccepted": m.events_accepted,
            "deliveries": hub["delivered"],
            "dropped": {
                "rate_limit": hub["dropped_rate_limit"],
                "backpressure": hub["dropped_backpressure"],
                "dedup": m.dedup_hits,
            },
            "dedupHits": m.dedup_hits,
            "dedupStats": {"deduplicatedCount": self.dedup.duplicates, "uniqueCount": self.dedup.uniques},
            "backpressureNotices": hub["backpressure_notices"],
            "slowConsumerCloses": m.slow_consumer_closes,
            "refused": dict(m.refused),
            "queuedBytes": hub["queued_bytes"],
            "hotTierRows": len(self.hot),
            "hotTierBytes": self.hot.bytes_used,
            "uptimeSeconds": round(time.time() - m.started_at, 3),
            "process": process_usage(),
            "archiver": self._archiver_status.summary(self.config.cold.enabled),
            "durableLog": self.log_stats(),
        }

    def log_stats(self) -> dict[str, Any] | None:
        """The durable log's positions, fsyncs and size; None for a log without stats (memory)."""
        return self._log.stats()

    def metrics_prometheus(self) -> str:
        return prometheus_text(self.metrics(), self.counters)

    def health(self) -> dict[str, Any]:
        """/health: `status` is "healthy" only when the node can acknowledge events; the listeners
        answer 503 otherwise, so a load balancer takes the node out."""
        last = self.counters.last_event_at_ms
        log_stats = self.log_stats() or {}
        log_error = log_stats.get("error")
        status = "shutting_down" if self.shutting_down else "unhealthy" if log_error else "healthy"
        health: dict[str, Any] = {
            "status": status,
            "version": __version__,
            "uptime": round(time.time() - self.counters.started_at, 3),
            "connections": len(self._conns),
            "lastEventAt": iso_from_ms(last) if last is not None else None,
            "hotTierRows": len(self.hot),
            "archiver": self._archiver_status.summary(self.config.cold.enabled),
            "logPosition": log_stats.get("last_position"),
        }
        if log_error:
            health["error"] = str(LogUnavailableError(log_error))
        return health

    async def cold_query(self, sql: str) -> list[dict[str, Any]]:
        """One SELECT over the Iceberg cold tier (`unified_events` / `events`), as row dicts.
        Runs in a worker thread: the scan and DuckDB never block the event loop."""
        from .cold.query import cold_query

        result, _scan = await asyncio.to_thread(cold_query, self.config, sql)
        return result.to_pylist()


class _LocalSink:
    """An in-process subscriber: frames are split back into event dicts and queued.

    When the consumer falls `max_buffered` events behind, the sink reports itself not writable so
    the hub applies the same cap and drop policy as for a slow socket.
    """

    def __init__(self, stream: EventStream, max_buffered: int) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.max_buffered = max_buffered
        self.paused = False
        self.conn: Connection | None = None

    def write(self, data: bytes) -> None:
        for payload in _core.split_frames(data):
            self.queue.put_nowait(orjson.loads(payload))
        if not self.paused and self.queue.qsize() >= self.max_buffered and self.conn is not None:
            self.paused = True
            self.stream.set_writable(self.conn, False)

    def on_consumed(self) -> None:
        if self.paused and self.queue.qsize() < self.max_buffered // 2 and self.conn is not None:
            self.paused = False
            self.stream.set_writable(self.conn, True)

    def close(self, code: int, reason: str) -> None:
        self.queue.put_nowait(None)
