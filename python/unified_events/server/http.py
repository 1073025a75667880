"""The HTTP API (RSGI, served by granian embedded in the same loop as the WebSocket listener).

Every answer is JSON, errors included: unknown path 404, wrong method 405 (with `Allow`), body
over `max_body_bytes` 413, bad input 400, shutting down 503 (original-system.md §2), a failed
durable log 503 ("durable log unavailable: <reason>"; /health answers 503 then too).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from .. import _core, codes
from ..errors import EventValidationError, LogUnavailableError, ShuttingDownError
from ..events import now_ms
from ..stream import EventStream, PublishResult

log = logging.getLogger("unified_events.http")

Reply = tuple[int, Any]
Handler = Callable[["Request"], Awaitable[Reply]]
_JSON_HEADERS = [("content-type", "application/json")]


class BodyTooLarge(Exception):
    pass


# An oversized body is read and dropped up to this many bytes before the 413: a client still
# uploading when the server answers and closes gets EPIPE instead of the answer.
_DRAIN_BYTES = 8 << 20


async def read_limited_body(proto: Any, declared: str | None, limit: int) -> bytes | None:
    """The whole body, or None when it is over `limit` (declared or actual)."""
    if declared is not None and declared.isdigit() and int(declared) > max(limit, _DRAIN_BYTES):
        return None
    chunks: list[bytes] | None = []
    size = 0
    async for chunk in proto:
        size += len(chunk)
        if size > limit:
            chunks = None
            if size > _DRAIN_BYTES:
                break
        elif chunks is not None:
            chunks.append(chunk)
    return b"".join(chunks) if chunks is not None else None


class Request:
    __slots__ = ("method", "path", "query", "headers", "_proto", "_limit")

    def __init__(self, scope: Any, proto: Any, limit: int) -> None:
        self.method: str = scope.method
        self.path: str = scope.path
        self.query = parse_qs(scope.query_string, keep_blank_values=True)
        self.headers = scope.headers
        self._proto = proto
        self._limit = limit

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    async def body(self) -> bytes:
        body = await read_limited_body(self._proto, self.headers.get("content-length"), self._limit)
        if body is None:
            raise BodyTooLarge
        return body

    async def json(self) -> Any:
        return parse_json(await self.body())


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise EventValidationError("Invalid JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise EventValidationError("Invalid JSON body") from None


class HttpApp:
    """The RSGI application. Handlers run on the loop thread and call the stream directly."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.routes: dict[str, dict[str, Handler]] = {
            "/broadcast": {"POST": self.broadcast},
            "/stats": {"GET": self.stats},
            "/query/unified": {"POST": self.query_unified},
            "/query/trace": {"GET": self.query_trace},
            "/query/session": {"GET": self.query_session},
            "/query": {"POST": self.query_sql},
            "/health": {"GET": self.health},
            "/metrics": {"GET": self.metrics},
        }

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        request = Request(scope, proto, self.stream.config.max_body_bytes)
        methods = self.routes.get(request.path)
        if methods is None:
            return _send(proto, 404, {"error": "Not Found"})
        handler = methods.get(request.method) or (methods.get("GET") if request.method == "HEAD" else None)
        if handler is None:
            allow = ", ".join(methods)
            return _send(proto, 405, {"error": f"Method Not Allowed (allowed: {allow})"}, [("allow", allow)])
        if self.stream.shutting_down and request.path != "/health":
            return _send(proto, 503, {"error": codes.SHUTTING_DOWN})
        try:
            status, payload = await handler(request)
        except BodyTooLarge:
            status, payload = 413, {"error": f"Request body exceeds {self.stream.config.max_body_bytes} bytes"}
        except EventValidationError as exc:
            status, payload = 400, exc.body
        except ShuttingDownError:
            status, payload = 503, {"error": codes.SHUTTING_DOWN}
        except LogUnavailableError as exc:  # logged once by the log, not once per refused request
            status, payload = 503, {"error": str(exc)}
        except Exception as exc:  # never crash the server on one request
            log.exception("handler for %s failed", request.path)
            status, payload = 500, {"error": f"Internal error: {type(exc).__name__}"}
        if isinstance(payload, tuple):  # (content type, text)
            proto.response_str(status, [("content-type", payload[0])], payload[1])
        elif isinstance(payload, bytes):  # JSON already serialised
            proto.response_bytes(status, _JSON_HEADERS, payload)
        else:
            _send(proto, status, payload)

    # ------------------------------------------------------------------ handlers

    async def broadcast(self, request: Request) -> Reply:
        raw = await request.body()
        # A batch of plain legacy events goes from the body to the reply in Rust; anything else
        # (one object, UnifiedEvents, anything invalid or unusual) takes the path below.
        batch = _core.accept_legacy_batch(raw, self.stream.config.max_batch_events, now_ms())
        if batch is not None:
            duplicates = await self.stream.publish_legacy_batch(batch)
            return 200, batch.reply(duplicates)
        body = parse_json(raw)
        if isinstance(body, list):
            return await self._broadcast_batch(body)
        if not isinstance(body, dict):
            raise EventValidationError("Request body must be a JSON object")
        result = (await self.stream.publish_many([body]))[0]
        if isinstance(result, EventValidationError):
            raise result
        return 200, _publish_reply(result)

    async def _broadcast_batch(self, bodies: list[Any]) -> Reply:
        limit = self.stream.config.max_batch_events
        if not bodies:
            raise EventValidationError("A batch must hold at least one event")
        if len(bodies) > limit:
            raise EventValidationError(f"A batch holds at most {limit} events (got {len(bodies)})")
        if not all(isinstance(b, dict) for b in bodies):
            raise EventValidationError("Request body must be a JSON object or an array of event objects")
        results = await self.stream.publish_many(bodies)
        items: list[dict[str, Any]] = []
        rejected = 0
        for index, result in enumerate(results):  # one dict per event, keys as in _publish_reply
            if isinstance(result, EventValidationError):
                items.append({"index": index, **result.body, "success": False})
                rejected += 1
            elif result.duplicate:
                items.append({"index": index, "success": True, "id": result.id, "event_type": result.event_type,
                              "duplicate": True})
            else:
                items.append({"index": index, "success": True, "id": result.id, "event_type": result.event_type})
        accepted = len(items) - rejected
        return 200, {"success": rejected == 0, "accepted": accepted, "rejected": rejected, "results": items}

    async def stats(self, request: Request) -> Reply:
        return 200, self.stream.stats()

    async def query_unified(self, request: Request) -> Reply:
        body = await request.json()
        if not isinstance(body, dict):
            raise EventValidationError("Request body must be a JSON object")
        events = self.stream.query_unified(body)
        return 200, {"events": events, "count": len(events)}

    async def query_trace(self, request: Request) -> Reply:
        return self._events_by(request, "trace_id")

    async def query_session(self, request: Request) -> Reply:
        return self._events_by(request, "session_id")

    def _events_by(self, request: Request, field: str) -> Reply:
        value = request.arg(field)
        if not value:
            return 400, {"error": f"{field} is required"}
        events = self.stream.events_for(field, value)
        return 200, {field: value, "events": events, "count": len(events)}

    async def query_sql(self, request: Request) -> Reply:
        from ..sql.engine import QueryBusy, QueryFailed, QueryTimeout

        body = await request.json()
        if not isinstance(body, dict):
            raise EventValidationError("Request body must be a JSON object")
        try:
            result = await self.stream.sql.run(body.get("sql"), body.get("params"))
        except QueryTimeout as exc:
            return 408, {"error": str(exc)}
        except QueryBusy as exc:
            return 503, {"error": str(exc)}
        except QueryFailed as exc:
            return exc.status, {"error": str(exc)}
        return 200, result.body()

    async def health(self, request: Request) -> Reply:
        health = self.stream.health()
        return (200 if health["status"] == "healthy" else 503), health

    async def metrics(self, request: Request) -> Reply:
        wants_text = request.arg("format") == "prometheus" or "text/plain" in (request.headers.get("accept") or "")
        if wants_text:
            return 200, ("text/plain; version=0.0.4; charset=utf-8", self.stream.metrics_prometheus())
        return 200, self.stream.metrics()


def _publish_reply(result: PublishResult) -> dict[str, Any]:
    reply: dict[str, Any] = {"success": True, "id": result.id, "event_type": result.event_type}
    if result.duplicate:
        reply["duplicate"] = True
    return reply


def _send(proto: Any, status: int, payload: Any, extra: list[tuple[str, str]] | None = None) -> None:
    proto.response_bytes(status, _JSON_HEADERS + (extra or []), orjson.dumps(payload))
