"""Authentication, authorization and hardening (issue 5).

`Security` holds what one stream's listeners share: the token verifier, the per-client limiters
and the refusal counters. The HTTP side is a middleware around the RSGI app (http_guard.py), the
WebSocket side one guard per connection (ws_guard.py); the rules themselves live in policy.py.
"""

from __future__ import annotations

import inspect
import logging
import os
import weakref
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .limits import AddressConnections, PublishLimiter
from .tokens import ANONYMOUS, SESSION_COOKIE, Rights, TokenRejected, TokenVerifier, rights_from_validator

if TYPE_CHECKING:
    from ..stream import EventStream

log = logging.getLogger("unified_events.security")

__all__ = ["Security", "security_for", "check_startup", "Rights", "TokenRejected"]


class Security:
    def __init__(self, stream: EventStream, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.stream = stream
        self.config = stream.config
        self.verifier = TokenVerifier.from_config(self.config.auth, environ)
        self.metrics_token = environ.get("UE_METRICS_TOKEN") or None
        self.publish_limits = PublishLimiter(self.config.limits)
        self.connections = AddressConnections(self.config.limits.max_connections_per_address)
        self.refused = stream.counters.refused

    @property
    def require_auth(self) -> bool:
        return self.config.require_auth

    def refuse(self, reason: str) -> None:
        self.refused[reason] += 1

    def authenticate(self, token: str) -> Rights | Awaitable[Rights | None]:
        """Rights for a token, or an awaitable of them (async custom validator). Raises
        TokenRejected. A custom validator given to EventStream wins over the JWT verifier."""
        validator = self.stream.token_validator
        if validator is not None:
            try:
                result = validator(token)
            except Exception:
                log.warning("token validator raised", exc_info=True)
                raise TokenRejected("Token validation error") from None
            if inspect.isawaitable(result):
                return _await_rights(result)
            rights = rights_from_validator(result)
            if rights is None:
                raise TokenRejected(_validator_error(result))
            return rights
        if self.verifier is None:
            raise TokenRejected("No token verifier is configured")
        return self.verifier.verify(token)

    async def authenticate_refresh(self, token: str) -> Rights:
        """Refresh uses the refresh validator when one is set, else the same path as connect."""
        validator = self.stream.refresh_validator or self.stream.token_validator
        if validator is None:
            if self.verifier is None:
                raise TokenRejected("No token verifier is configured")
            return self.verifier.verify(token)
        try:
            result = validator(token)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            log.warning("refresh validator raised", exc_info=True)
            raise TokenRejected("Token validation error") from None
        rights = rights_from_validator(result)
        if rights is None:
            raise TokenRejected(_validator_error(result))
        return rights

    def anonymous(self) -> Rights:
        return ANONYMOUS

    def session_token(self, cookie_header: str | None, origin: str | None) -> str | None:
        """The sign-in session cookie's token, for browsers (they cannot set Authorization on a
        WebSocket). Only from a listed CORS origin, or with no Origin at all (not a browser page),
        so a page on another origin cannot ride on the cookie (cross-site WebSocket hijacking)."""
        if not cookie_header or (origin is not None and origin not in self.config.cors.allowed_origins):
            return None
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and value:
                return value
        return None


async def _await_rights(result: Awaitable[Any]) -> Rights | None:
    try:
        return rights_from_validator(await result)
    except Exception:
        log.warning("token validator raised", exc_info=True)
        return None


def _validator_error(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("error"), str):
        return result["error"]
    return "Token validation failed"


_BY_STREAM: weakref.WeakKeyDictionary[Any, Security] = weakref.WeakKeyDictionary()


def security_for(stream: EventStream) -> Security:
    """The stream's Security, built on first use (after check_startup has passed)."""
    sec = _BY_STREAM.get(stream)
    if sec is None:
        sec = _BY_STREAM[stream] = Security(stream)
    return sec


def check_startup(stream: EventStream, environ: Mapping[str, str] | None = None) -> None:
    """Refuse to start an insecure or unusable configuration, with a message that says why."""
    environ = os.environ if environ is None else environ
    config = stream.config
    security = Security(stream, environ)  # raises on a short secret or an unreadable key file
    _BY_STREAM[stream] = security
    if config.require_auth and stream.token_validator is None and security.verifier is None:
        what = ("UE_AUTH_SECRET (or BETTER_AUTH_SECRET) in the environment" if config.auth.algorithm == "HS256"
                else "auth.public_key_file or auth.jwks_file")
        raise ConfigError("require_auth", True,
                          f"needs a key to verify tokens: set {what}, or pass EventStream(token_validator=...)")
    if config.environment == "production" and not config.require_auth and not config.auth.allow_insecure:
        raise ConfigError("require_auth", False,
                          "true in production (or set auth.allow_insecure = true if a proxy in front authenticates)")


def check_listeners(config: Any) -> None:
    """The server's own start-up checks: TLS where it is required."""
    tls_on = bool(config.tls.cert_file)
    https_only = config.tls.https_only or config.environment == "production"
    if https_only and not tls_on and not config.auth.allow_insecure:
        raise ConfigError("tls.cert_file", "",
                          "a certificate and key (tls.cert_file, tls.key_file): HTTPS only is on"
                          + (" in production" if config.environment == "production" else "")
                          + " (set auth.allow_insecure = true if a proxy in front terminates TLS)")
