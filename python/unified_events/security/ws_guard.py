"""The per-connection guard: frame permissions, publish limits, token expiry and refresh.

A connection's token lives at most `token_ttl` seconds from when it was presented, and never past
its `exp`. `expiry_notice_s` before that the client gets `token_expiring`; a successful
`refresh_token` starts a new lifetime with the new token's rights; otherwise, at the deadline, a
`token_error` frame and close 4001. Subscriptions the new rights no longer cover are dropped with
an `unsubscribed` frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .. import codes
from ..auth import check_token_format
from ..events import now_ms
from . import Security
from .payloads import event_topic, strict_issues
from .policy import Need, frame_need, role_allows
from .tokens import Rights, TokenRejected

if TYPE_CHECKING:
    from ..protocol import ClientSession

log = logging.getLogger("unified_events.security")


class ConnectionGuard:
    __slots__ = ("security", "session", "rights", "address", "authenticated", "_timers", "deadline_s")

    def __init__(self, security: Security, session: ClientSession, rights: Rights, address: str,
                 authenticated: bool) -> None:
        self.security = security
        self.session = session
        self.rights = rights
        self.address = address
        self.authenticated = authenticated  # a token was checked at connect: its lifetime is enforced
        self._timers: tuple[asyncio.TimerHandle, ...] = ()  # only for a token whose lifetime is enforced
        self.deadline_s: float | None = None

    # ------------------------------------------------------------------ frames

    def frame_allowed(self, kind: Any, message: dict[str, Any]) -> bool:
        """False (after sending the error frame) when this connection may not send this frame."""
        if kind == "subscribe":
            self._count_forbidden_subscriptions(message.get("topics"))
            return True  # the protocol checks each topic and answers per topic
        need = frame_need(kind)
        if need is Need.OPEN:
            return True
        if not role_allows(self.rights, need):
            wanted = "an admin" if need is Need.ADMIN else "a publisher or admin"
            return self._refuse("forbidden_frame", "FORBIDDEN", f"{kind} needs {wanted} token", message)
        if need is Need.PUBLISH:
            return self._publish_allowed(message)
        return True

    def _publish_allowed(self, message: dict[str, Any]) -> bool:
        event = message.get("event")
        if not isinstance(event, dict):
            return True  # the protocol answers the malformed frame
        body = event if (event.get("event_type") or event.get("event_name")) else {
            "topic": message.get("topic"), "event": event}
        topic = event_topic(body)
        if topic is not None and not self.rights.may_publish(topic):
            return self._refuse("forbidden_publish", "FORBIDDEN", f"Publishing to {topic} is not allowed", message)
        limited = self.security.publish_limits.allow(self._token_key(), self.address)
        if limited is not None:
            return self._refuse(f"rate_limited_{limited}", "RATE_LIMITED",
                                f"Publish rate limit exceeded (per {limited})", message)
        if self.security.config.limits.strict_payloads:
            issues = strict_issues(body)
            if issues:
                self.security.refuse("invalid_payload")
                self.session.send({"type": "error", "code": codes.INVALID_EVENT, "message": "Invalid UnifiedEvent",
                                   "details": issues, "ref": message.get("ref"), "timestamp": now_ms()})
                return False
        return True

    def _token_key(self) -> str | None:
        return self.rights.sub if self.authenticated else None

    def _count_forbidden_subscriptions(self, topics: Any) -> None:
        if isinstance(topics, list):
            for topic in topics:
                if isinstance(topic, str) and not self.rights.may_subscribe(topic):
                    self.security.refuse("forbidden_subscribe")

    def _refuse(self, reason: str, code: str, text: str, message: dict[str, Any]) -> bool:
        self.security.refuse(reason)
        extra = {"ref": message["ref"]} if "ref" in message else {}
        self.session.error(code, text, **extra)
        return False

    # ------------------------------------------------------------------ token lifetime

    @property
    def handles_refresh(self) -> bool:
        """With no key, no validator and auth off, refresh keeps the original's format-only check."""
        sec = self.security
        stream = sec.stream
        return bool(self.authenticated or sec.verifier or stream.refresh_validator or stream.token_validator)

    def start(self) -> None:
        if self.authenticated:
            self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        self._cancel_timers()
        now = time.time()
        deadline = now + self.security.config.token_ttl
        if self.rights.exp is not None:
            deadline = min(deadline, self.rights.exp)
        self.deadline_s = deadline
        lifetime = max(0.0, deadline - now)
        notice = min(float(self.security.config.auth.expiry_notice_s), lifetime / 2)
        loop = asyncio.get_running_loop()
        self._timers = (loop.call_later(lifetime - notice, self._warn), loop.call_later(lifetime, self._expire))

    def _warn(self) -> None:
        assert self.deadline_s is not None
        self.session.send({"type": "token_expiring", "expiresAt": int(self.deadline_s * 1000), "timestamp": now_ms()})

    def _expire(self) -> None:
        conn = self.session.conn
        if conn.closed:
            return
        self.security.refuse("token_expired")
        self.session.send({"type": "token_error", "error": "Token expired", "timestamp": now_ms()})
        # The frame is queued for this tick's flush; close right after it has been written.
        asyncio.get_running_loop().call_soon(self._close_expired)

    def _close_expired(self) -> None:
        conn = self.session.conn
        if not conn.closed:
            conn.sink.close(codes.CLOSE_TOKEN_EXPIRED, "Token expired")
            self.session.stream.close_connection(conn)

    async def refresh(self, token: Any) -> None:
        problem = None if isinstance(token, str) and token else check_token_format(token)
        if problem is not None:
            return self._token_error(problem)
        try:
            rights = await self.security.authenticate_refresh(token)
        except TokenRejected as exc:
            self.security.refuse("token_refresh_rejected")
            return self._token_error(str(exc))
        if self.session.conn.closed:
            return
        self.rights = rights
        conn = self.session.conn
        conn.allowed_topics = list(rights.sub_topics) if rights.sub_topics is not None else None
        stream = self.session.stream
        dropped = [key for key in stream.hub.subscriptions(conn.conn_id) if not rights.may_subscribe(key)]
        for key in dropped:
            stream.remove_subscription(conn, key)
        if dropped:
            self.session.send({"type": "unsubscribed", "topics": dropped,
                               "reason": "not allowed by the refreshed token", "timestamp": now_ms()})
        if self.authenticated:
            self._schedule_expiry()
        reply: dict[str, Any] = {"type": "token_refreshed", "timestamp": now_ms()}
        if rights.sub_topics is not None:
            reply["allowedTopics"] = list(rights.sub_topics)
        if self.deadline_s is not None and self.authenticated:
            reply["expiresAt"] = int(self.deadline_s * 1000)
        self.session.send(reply)

    def _token_error(self, text: str) -> None:
        self.session.send({"type": "token_error", "error": text, "timestamp": now_ms()})

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = ()

    def close(self) -> None:
        self._cancel_timers()
        self.security.connections.remove(self.address)
