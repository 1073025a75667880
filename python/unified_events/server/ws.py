"""The WebSocket listener (picows): the upgrade checks, then frames in and out of a ClientSession.

The upgrade checks run in the original's order (original-system.md §2 E1): Upgrade header (426),
connection limit (503), topics (400), topic limit (503), token (401/403). This listener also
answers a plain `GET /health`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import struct
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

from .. import codes
from ..auth import bearer_token
from ..events import topic_error
from ..protocol import ClientSession
from ..security import TokenRejected, security_for
from ..security.headers import security_headers
from ..security.tokens import Rights
from ..security.ws_guard import ConnectionGuard
from ..stream import Connection, EventStream

log = logging.getLogger("unified_events.ws")

WS_PATHS = ("/events", "/")
_MAX_EARLY_FRAMES = 100
_JSON = {"Content-Type": "application/json"}
_TEXT = {"Content-Type": "text/plain"}
# picows keeps the upgrade request and response on the transport for the connection's life, and reads
# neither after the handshake; their header maps are about 2 KiB per idle connection. The factory
# has read what it needs, so on_ws_connected swaps them for this shared, read-only empty one.
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class TransportSink:
    """Frames already encoded by the core go straight to the socket's transport: no re-framing."""

    __slots__ = ("transport", "raw")

    def __init__(self, transport: WSTransport) -> None:
        self.transport = transport
        self.raw = transport.underlying_transport

    def write(self, data: bytes) -> None:
        if not self.transport.is_disconnected:
            self.raw.write(data)

    def close(self, code: int, reason: str) -> None:
        if self.transport.is_disconnected:
            return
        try:
            close_code = WSCloseCode(code)
        except ValueError:
            # picows' enum stops at 1014: our 4000-4999 codes (codes.py) are framed by hand.
            message = reason.encode()[:123]
            self.raw.write(bytes((0x88, 2 + len(message))) + struct.pack("!H", code) + message)
            self.transport.disconnect()
            return
        self.transport.send_close(close_code, reason.encode())
        self.transport.disconnect()


class Heartbeat:
    """Reaps peers that stopped answering, with one timer for all connections.

    picows' own auto-ping runs an asyncio task per connection (about 2 KiB each while idle). Here one
    timer ticks every `reply_s`: a connection that sent nothing for `idle_s` gets a ping; one that
    still sent nothing (not even the pong) one tick later is closed with 1001, as picows does.
    The timer runs only while there are connections.
    """

    __slots__ = ("idle_ticks", "reply_s", "listeners", "_timer")

    def __init__(self, idle_s: float, reply_s: float) -> None:
        self.reply_s = reply_s
        self.idle_ticks = max(1, round(idle_s / reply_s))
        self.listeners: set[EventsListener] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, listener: EventsListener) -> None:
        self.listeners.add(listener)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.reply_s, self._tick)

    def discard(self, listener: EventsListener) -> None:
        self.listeners.discard(listener)

    def _tick(self) -> None:
        self._timer = None
        ping_at = self.idle_ticks
        for listener in list(self.listeners):
            transport = listener.transport
            if transport is None or transport.is_disconnected:
                self.listeners.discard(listener)
                continue
            ticks = listener.idle_ticks + 1
            listener.idle_ticks = ticks
            if ticks == ping_at:
                transport.send_ping()
            elif ticks > ping_at:
                self.listeners.discard(listener)
                transport.send_close(WSCloseCode.GOING_AWAY,
                                     f"peer has not replied to ping within {self.reply_s:g} second(s)".encode())
                transport.disconnect()
        if self.listeners:
            self._timer = asyncio.get_running_loop().call_later(self.reply_s, self._tick)


class EventsListener(WSListener):  # type: ignore[misc]
    # One per connection: slots keep it small (WSListener already carries __weakref__ for picows).
    __slots__ = ("stream", "topics", "rights", "authenticated", "address", "last_event_id", "from_timestamp",
                 "conn", "session", "guard", "transport", "_early", "_fragments", "_fragment_bytes", "heartbeat",
                 "idle_ticks")

    def __init__(self, stream: EventStream, topics: list[str], rights: Any, authenticated: bool,
                 last_event_id: str | None, from_timestamp: int | None, heartbeat: Heartbeat | None = None) -> None:
        super().__init__()
        self.stream = stream
        self.heartbeat = heartbeat
        self.idle_ticks = 0  # heartbeat ticks since the peer last sent a frame
        self.topics = topics
        self.rights = rights  # Rights, or an awaitable of them (async token validator)
        self.authenticated = authenticated
        self.address = "unknown"
        self.last_event_id = last_event_id
        self.from_timestamp = from_timestamp
        self.conn: Connection | None = None
        self.session: ClientSession | None = None
        self.guard: ConnectionGuard | None = None
        self.transport: WSTransport | None = None
        self._early: list[bytes] | None = None  # frames received while an async validator runs
        self._fragments: list[bytes] | None = None
        self._fragment_bytes = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if transport.request is not None:
            transport.request.headers = _NO_HEADERS
        if transport.response is not None:
            transport.response.headers = _NO_HEADERS
        if self.heartbeat is not None:
            self.heartbeat.add(self)
        security = security_for(self.stream)
        peer = transport.underlying_transport.get_extra_info("peername")
        address = str(peer[0]) if peer else "unknown"
        if not security.connections.try_add(address):
            # picows' upgrade factory does not see the peer address, so this limit closes after the upgrade.
            security.refuse("connections_per_address")
            TransportSink(transport).close(codes.CLOSE_TOO_MANY_CONNECTIONS, codes.TOO_MANY_CONNECTIONS)
            return
        self.address = address
        if inspect.isawaitable(self.rights):
            # An async validator cannot run in the (synchronous) upgrade: accept, then decide before
            # subscribing anything; frames sent meanwhile wait.
            self._early = []
            asyncio.get_running_loop().create_task(self._finish_async_auth(self.rights))
            return
        self._open(self.rights)

    async def _finish_async_auth(self, pending: Any) -> None:
        rights = await pending
        assert self.transport is not None
        if self.transport.is_disconnected:
            security_for(self.stream).connections.remove(self.address)
            return
        reason = None
        if rights is None:
            reason = ("token_rejected", codes.CLOSE_UNAUTHORIZED, codes.UNAUTHORIZED)
        elif not all(rights.may_subscribe(t) for t in self.topics):
            reason = ("forbidden_topic", codes.CLOSE_FORBIDDEN, codes.FORBIDDEN_TOPIC)
        if reason is not None:
            security_for(self.stream).refuse(reason[0])
            security_for(self.stream).connections.remove(self.address)
            TransportSink(self.transport).close(reason[1], reason[2])
            return
        self._open(rights)
        early, self._early = self._early or [], None
        for data in early:
            self._deliver(data)

    def _open(self, rights: Rights) -> None:
        assert self.transport is not None
        stream = self.stream
        allowed = list(rights.sub_topics) if rights.sub_topics is not None else None
        conn = stream.open_connection(TransportSink(self.transport), allowed)
        self.conn = conn
        self.session = ClientSession(stream, conn)
        self.guard = ConnectionGuard(security_for(stream), self.session, rights, self.address, self.authenticated)
        self.session.guard = self.guard
        for topic in self.topics:
            stream.add_subscription(conn, topic)
        self.session.send({"type": "connected", "connectionId": conn.connection_id, "topics": self.topics})
        stream.replay(conn, self.topics, self.last_event_id, self.from_timestamp)
        # Only needed until here: an idle connection keeps nothing it will not use again.
        self.topics = self.last_event_id = self.from_timestamp = self.rights = None  # type: ignore[assignment]
        self.guard.start()

    def _deliver(self, data: bytes) -> None:
        if self.session is not None:
            self.session.on_message(data)
        elif self._early is not None and len(self._early) < _MAX_EARLY_FRAMES:
            self._early.append(data)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.idle_ticks = 0
        kind = frame.msg_type
        if kind in (WSMsgType.TEXT, WSMsgType.BINARY):
            if frame.fin:
                self._deliver(frame.get_payload_as_bytes())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
                self._fragment_bytes = frame.payload_size
        elif kind == WSMsgType.CONTINUATION and self._fragments is not None:
            self._fragment_bytes += frame.payload_size
            if self._fragment_bytes > self.stream.config.max_frame_bytes:
                self._fragments = None
                security_for(self.stream).refuse("frame_too_large")
                transport.send_close(WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
                transport.disconnect()
                return
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._deliver(data)
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.heartbeat is not None:
            self.heartbeat.discard(self)
        if self.guard is not None:
            self.guard.close()
        if self.conn is not None:
            self.stream.close_connection(self.conn)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.stream.set_writable(self.conn, False)

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.stream.set_writable(self.conn, True)


def make_factory(stream: EventStream, ping_idle_s: float | None = None, ping_reply_s: float = 10.0) -> Any:
    """The picows listener factory: runs the upgrade checks for each request. With `ping_idle_s`,
    idle peers are pinged and the ones that do not answer are closed (`Heartbeat`); run picows
    with `enable_auto_ping=False` then."""

    heartbeat = Heartbeat(ping_idle_s, ping_reply_s) if ping_idle_s else None

    base_headers = dict(security_headers(stream.config))

    def respond(status: int, body: bytes, headers: dict[str, str]) -> WSUpgradeResponseWithListener:
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_error_response(status, body, {**base_headers, **headers}), None)

    def json_error(status: int, message: str) -> WSUpgradeResponseWithListener:
        return respond(status, orjson.dumps({"error": message}), _JSON)

    def factory(request: WSUpgradeRequest) -> Any:
        url = urlsplit(request.path.decode("latin-1"))
        if url.path == "/health":
            health = stream.health()
            status = 200 if health["status"] == "healthy" else 503
            if status == 200:
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_ok_response(orjson.dumps(health), {**base_headers, **_JSON}), None)
            return respond(status, orjson.dumps(health), _JSON)
        if url.path not in WS_PATHS:
            return json_error(404, "Not Found")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return respond(426, codes.UPGRADE_REQUIRED.encode(), _TEXT)
        if stream.shutting_down:
            return respond(503, codes.SHUTTING_DOWN.encode(), _TEXT)
        if not stream.can_accept_connection():
            return respond(503, codes.MAX_CONNECTIONS.encode(), _TEXT)
        query = parse_qs(url.query, keep_blank_values=True)
        topics = query.get("topic", [])
        for topic in topics:
            problem = topic_error(topic)
            if problem is not None:
                return json_error(400, f"Invalid topic: {problem}")
        topics = list(dict.fromkeys(topics))  # a repeated topic is one subscription
        security = security_for(stream)
        if stream.would_exceed_topics(topics):
            security.refuse("max_topics")
            return respond(503, codes.MAX_TOPICS.encode(), _TEXT)
        rights: Any = security.anonymous()
        if stream.config.require_auth:
            token = bearer_token(_first(query, "token"), request.headers.get("Authorization")) or \
                security.session_token(request.headers.get("Cookie"), request.headers.get("Origin"))
            try:
                if token is None:
                    raise TokenRejected("Token is empty or missing")
                rights = security.authenticate(token)
            except TokenRejected as exc:
                security.refuse("token_rejected")
                return respond(401, f"{codes.UNAUTHORIZED}: {exc}".encode(), {**_TEXT, "WWW-Authenticate": "Bearer"})
            if isinstance(rights, Rights) and not all(rights.may_subscribe(t) for t in topics):
                security.refuse("forbidden_topic")
                return respond(403, codes.FORBIDDEN_TOPIC.encode(), _TEXT)
        last_event_id = _first(query, "lastEventId") or request.headers.get("Last-Event-ID") or None
        from_timestamp: int | None = None
        raw_from = _first(query, "fromTimestamp")
        if raw_from:
            try:
                from_timestamp = int(raw_from)
            except ValueError:
                if inspect.iscoroutine(rights):
                    rights.close()  # an async validator's pending check: never started
                return json_error(400, "fromTimestamp must be epoch milliseconds (an integer)")
        return EventsListener(stream, topics, rights, stream.config.require_auth, last_event_id, from_timestamp,
                              heartbeat)

    return factory


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None
