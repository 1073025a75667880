"""The HTTP middleware: security headers, CORS, authorization by route and publish limits.

It wraps the RSGI app, so route handlers stay unaware of it. For `/broadcast` it reads the body
first (the topics decide whether the token may publish), then hands the inner app a protocol
object that replays that body.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..auth import bearer_token
from ..server.http import read_limited_body
from . import Security, security_for
from .headers import Cors, security_headers
from .payloads import event_topic, strict_issues
from .policy import Need, http_need, role_allows
from .tokens import Rights, TokenRejected

log = logging.getLogger("unified_events.security")

_JSON = ("content-type", "application/json")


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any], reason: str,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.status, self.body, self.reason, self.headers = status, body, reason, headers or []


class GuardedApp:
    def __init__(self, inner: Any, stream: Any, oauth: Any = None) -> None:
        self.inner = inner
        self.stream = stream
        self.security: Security = security_for(stream)
        self.config = stream.config
        self.cors = Cors(self.config)
        self.base_headers = security_headers(self.config)
        self.oauth = oauth
        limits = self.config.limits
        # Reading /broadcast bodies here costs a second parse: only when something needs them.
        self.checks_publish = bool(self.config.require_auth or limits.strict_payloads
                                   or limits.publish_per_second_per_token > 0
                                   or limits.publish_per_second_per_address > 0)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return await self.inner.__rsgi__(scope, proto)
        origin = scope.headers.get("origin")
        extra = self.base_headers + self.cors.headers(origin)
        if scope.method == "OPTIONS":
            return self._preflight(scope, proto, origin)
        out = _Proto(proto, extra, on_status=self._count_inner_refusal)
        try:
            if self.oauth is not None and (scope.path == "/auth" or scope.path.startswith("/auth/")):
                return await self.oauth.handle(scope, out)
            need = http_need(scope.path)
            rights = await self._authorize(scope, need)
            if need is Need.PUBLISH and scope.method == "POST" and self.checks_publish:
                out = await self._check_publish(scope, out, rights)
        except Refused as refusal:
            self.security.refuse(refusal.reason)
            # counted above by reason: answer without the status hook
            return _Proto(proto, extra).response_bytes(refusal.status, [_JSON, *refusal.headers],
                                                       orjson.dumps(refusal.body))
        await self.inner.__rsgi__(scope, out)

    def _preflight(self, scope: Any, proto: Any, origin: str | None) -> None:
        if not self.cors.allows(origin) or not scope.headers.get("access-control-request-method"):
            self.security.refuse("cors_preflight")
            return proto.response_bytes(403, [*self.base_headers, _JSON],
                                        orjson.dumps({"error": "CORS preflight refused: origin not allowed"}))
        proto.response_empty(204, self.base_headers + self.cors.preflight(origin))

    # ------------------------------------------------------------------ who may call what

    async def _authorize(self, scope: Any, need: Need) -> Rights | None:
        if need is Need.OPEN or not self.config.require_auth:
            return None
        token = bearer_token(None, scope.headers.get("authorization")) or \
            self.security.session_token(scope.headers.get("cookie"), scope.headers.get("origin"))
        if need is Need.METRICS:
            if token is not None and token == self.security.metrics_token:
                return None
            if self.config.auth.metrics_loopback and _is_loopback(scope.client):
                return None
            need = Need.ADMIN
        if token is None:
            raise Refused(401, {"error": "Unauthorized: a bearer token is required"}, "http_unauthorized",
                          [("www-authenticate", "Bearer")])
        try:
            rights = self.security.authenticate(token)
        except TokenRejected as exc:
            raise Refused(401, {"error": f"Unauthorized: {exc}"}, "http_unauthorized",
                          [("www-authenticate", 'Bearer error="invalid_token"')]) from None
        if not isinstance(rights, Rights):  # an async custom validator
            rights = await rights
            if rights is None:
                raise Refused(401, {"error": "Unauthorized: Token validation failed"}, "http_unauthorized",
                              [("www-authenticate", 'Bearer error="invalid_token"')])
        if not role_allows(rights, need):
            wanted = "an admin" if need is Need.ADMIN else "a publisher or admin"
            raise Refused(403, {"error": f"Forbidden: {scope.path} needs {wanted} token"}, "http_forbidden")
        return rights

    async def _check_publish(self, scope: Any, out: _Proto, rights: Rights | None) -> _Proto:
        limit = self.config.max_body_bytes
        body = await read_limited_body(out.inner, scope.headers.get("content-length"), limit)
        if body is None:
            raise Refused(413, {"error": f"Request body exceeds {limit} bytes"}, "body_too_large")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return out.with_body(body)  # the route answers 400 Invalid JSON body
        bodies = parsed if isinstance(parsed, list) else [parsed]
        if rights is not None:
            for item in bodies:
                topic = event_topic(item)
                if topic is not None and not rights.may_publish(topic):
                    raise Refused(403, {"error": f"Forbidden: publishing to {topic} is not allowed"},
                                  "forbidden_publish")
        token_key = rights.sub if rights is not None else None
        limited = self.security.publish_limits.allow(token_key, _address(scope.client), max(1, len(bodies)))
        if limited is not None:
            raise Refused(429, {"error": f"Too Many Requests: publish rate limit exceeded (per {limited})"},
                          f"rate_limited_{limited}", [("retry-after", "1")])
        if self.config.limits.strict_payloads:
            for index, item in enumerate(bodies):
                issues = strict_issues(item)
                if issues:
                    body_out: dict[str, Any] = {"success": False, "error": "Invalid UnifiedEvent", "details": issues}
                    if isinstance(parsed, list):
                        body_out["index"] = index
                    raise Refused(400, body_out, "invalid_payload")
        return out.with_body(body)

    def _count_inner_refusal(self, status: int) -> None:
        if status == 413:  # the route's own body limit (http.py) counts as a refusal too
            self.security.refuse("body_too_large")


class _Proto:
    """The RSGI protocol with our headers added to every response, and optionally a body read already."""

    def __init__(self, inner: Any, extra: list[tuple[str, str]], body: bytes | None = None,
                 on_status: Any = None) -> None:
        self.inner = inner
        self.extra = extra
        self.body = body
        self.on_status = on_status

    def with_body(self, body: bytes) -> _Proto:
        return _Proto(self.inner, self.extra, body, self.on_status)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def __call__(self) -> bytes:
        return self.body if self.body is not None else await self.inner()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._replay() if self.body is not None else self.inner.__aiter__()

    async def _replay(self) -> AsyncIterator[bytes]:
        assert self.body is not None
        yield self.body

    def _headers(self, headers: list[tuple[str, str]], status: int) -> list[tuple[str, str]]:
        if self.on_status is not None:
            self.on_status(status)
        return list(headers) + self.extra

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.inner.response_empty(status, self._headers(headers, status))

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.inner.response_str(status, self._headers(headers, status), body)

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.inner.response_bytes(status, self._headers(headers, status), body)

    def response_file(self, status: int, headers: list[tuple[str, str]], file: str) -> None:
        self.inner.response_file(status, self._headers(headers, status), file)

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Any:
        return self.inner.response_stream(status, self._headers(headers, status))


def _address(client: Any) -> str:
    """The peer IP from RSGI's `scope.client` ("1.2.3.4:5678" or "[::1]:5678")."""
    text = str(client or "")
    host = text.rsplit(":", 1)[0] if ":" in text else text
    return host.strip("[]") or "unknown"


def _is_loopback(client: Any) -> bool:
    try:
        return ipaddress.ip_address(_address(client)).is_loopback
    except ValueError:
        return False
