"""The client side of the WebSocket protocol: frames a client sends and what the server answers.

Transport-free: the picows adapter hands in complete text messages; answers are queued through
the stream so they stay in order with the connection's events (original-system.md §3.4-3.6).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from . import _core, codes
from .auth import check_token_format, run_validator, topic_allowed
from .errors import EventValidationError, LogUnavailableError, ShuttingDownError
from .events import now_ms
from .stream import Connection, EventStream

log = logging.getLogger("unified_events.protocol")


class ClientSession:
    __slots__ = ("stream", "conn", "_tasks", "guard")

    def __init__(self, stream: EventStream, conn: Connection) -> None:
        self.stream = stream
        self.conn = conn
        self._tasks: set[asyncio.Task[None]] | None = None  # created on the first publish/refresh
        self.guard: Any = None  # security.ws_guard.ConnectionGuard: permissions, limits, token lifetime

    def send(self, message: dict[str, Any]) -> None:
        self.stream.send_control(self.conn, orjson.dumps(message))

    def error(self, code: str, message: str, **extra: Any) -> None:
        self.send({"type": "error", "code": code, "message": message, **extra, "timestamp": now_ms()})

    def on_message(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.stream.counters.parse_errors += 1
            self.stream.counters.error_count += 1
            log.warning("parse error on %s: %r", self.conn.connection_id, data[:100])
            self.error(codes.PARSE_ERROR, codes.PARSE_ERROR_MESSAGE)
            return
        if not isinstance(message, dict):
            return  # like an unknown type: ignored, the socket stays open
        kind = message.get("type")
        if self.guard is not None and not self.guard.frame_allowed(kind, message):
            return
        if kind == "subscribe":
            self._subscribe(message.get("topics", []))
        elif kind == "unsubscribe":
            self._unsubscribe(message.get("topics", []))
        elif kind == "ping":
            self.send({"type": "pong", "timestamp": now_ms()})
        elif kind == "refresh_token":
            self._spawn(self._refresh(message.get("token")))
        elif kind == "publish":
            self._spawn(self._publish(message))
        elif kind in ("subscribe_query", "unsubscribe_query"):
            self.stream.live_queries.handle(self.conn, message)

    def _topics(self, topics: Any) -> list[str] | None:
        if not isinstance(topics, list):
            self.error(codes.INVALID_MESSAGE, "topics must be an array of strings")
            return None
        return topics

    def _subscribe(self, raw: Any) -> None:
        topics = self._topics(raw)
        for topic in topics or ():
            problem = _core.check_topic(topic) if isinstance(topic, str) else ("INVALID_TOPIC", "Topic must be a string")
            if problem is not None:
                self.error(codes.INVALID_TOPIC, f"Invalid topic: {problem[1]}", topic=topic, errorCode=problem[0])
                continue
            if not topic_allowed(self.conn.allowed_topics, topic):
                self.error("FORBIDDEN", codes.FORBIDDEN_TOPIC, topic=topic)
                continue
            if self.stream.would_exceed_topics([topic]):
                self.error(codes.MAX_TOPICS_EXCEEDED, f"Topic limit reached ({self.stream.config.max_topics})",
                           topic=topic)
                continue
            self.stream.add_subscription(self.conn, topic)

    def _unsubscribe(self, raw: Any) -> None:
        for topic in self._topics(raw) or ():
            if isinstance(topic, str):
                self.stream.remove_subscription(self.conn, topic)

    async def _refresh(self, token: Any) -> None:
        if self.guard is not None and self.guard.handles_refresh:
            await self.guard.refresh(token)  # verifies the signature and replaces the rights
            return
        validator = self.stream.refresh_validator
        if validator is None or not isinstance(token, str) or token == "":
            # An empty or non-string token never reaches a validator; without one, the format
            # and expiry check decides.
            problem = check_token_format(token)
            if problem is None:
                self.send({"type": "token_refreshed", "timestamp": now_ms()})
            else:
                self._token_error(problem)
            return
        try:
            decision = await run_validator(validator, token)
        except Exception:
            log.warning("refresh validator raised", exc_info=True)
            self._token_error("Token validation error")
            return
        if not decision.valid:
            self._token_error(decision.error or "Token validation failed")
            return
        reply: dict[str, Any] = {"type": "token_refreshed", "timestamp": now_ms()}
        if decision.allowed_topics is not None:
            self.conn.allowed_topics = decision.allowed_topics
            reply["allowedTopics"] = decision.allowed_topics
        self.send(reply)

    def _token_error(self, text: str) -> None:
        self.send({"type": "token_error", "error": text, "timestamp": now_ms()})

    async def _publish(self, message: dict[str, Any]) -> None:
        """`{"type":"publish","topic":T,"event":{...}}`: the same body rules as POST /broadcast."""
        ref = message.get("ref")
        event = message.get("event")
        if not isinstance(event, dict):
            self.error(codes.INVALID_EVENT, "event must be a JSON object", ref=ref)
            return
        body: dict[str, Any]
        if event.get("event_type") or event.get("event_name"):
            body = event
        else:
            body = {"topic": message.get("topic"), "event": event}
        try:
            result = (await self.stream.publish_many([body]))[0]
        except ShuttingDownError:
            self.error(codes.PUBLISH_FAILED, codes.SHUTTING_DOWN, ref=ref)
            return
        except LogUnavailableError as exc:  # not durable, so no ack: the client must not count on it
            self.error(codes.PUBLISH_FAILED, str(exc), ref=ref)
            return
        except Exception as exc:  # as HTTP's 500: a publish always gets an answer
            log.exception("publish on %s failed", self.conn.connection_id)
            self.error(codes.PUBLISH_FAILED, f"Internal error: {type(exc).__name__}", ref=ref)
            return
        if isinstance(result, EventValidationError):
            self.error(result.code, str(result), ref=ref, **{k: v for k, v in result.body.items() if k == "details"})
            return
        ack: dict[str, Any] = {"type": "ack", "id": result.id}
        if ref is not None:
            ack["ref"] = ref
        if result.duplicate:
            ack["duplicate"] = True
        self.send(ack)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
