"""OAuth 2.0 sign-in (GitHub, Google): authorization code flow with `state` and PKCE (S256).

`GET /auth/login/{provider}?return_to=…` remembers a random `state` with its PKCE verifier and
the checked `return_to`, then redirects to the provider. `GET /auth/callback/{provider}` takes the
state back exactly once (10 minutes at most), exchanges the code (sending the verifier), reads
the user, and signs a short-lived stream token: it goes to `return_to` as `auth_token`, or back
as JSON when there is none, and into an HttpOnly session cookie either way.
Client ids and secrets come from GITHUB_/GOOGLE_CLIENT_ID and _CLIENT_SECRET; the endpoints are
configurable (`[auth] github_authorize_url` …) so tests run against a local provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .redirects import ReturnToPolicy
from .tokens import SECRET_VARS, SESSION_COOKIE, create_token

log = logging.getLogger("unified_events.oauth")

_STATE_TTL_S = 600
_MAX_PENDING = 10_000
_EXCHANGE_TIMEOUT_S = 10
_SCOPES = {"github": "read:user user:email", "google": "openid email profile"}


@dataclass(frozen=True)
class Provider:
    name: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    user_url: str


@dataclass(frozen=True)
class _Pending:
    provider: str
    verifier: str
    return_to: str | None
    created: float


class OAuth:
    def __init__(self, stream: Any, providers: dict[str, Provider], signing_secret: str | None) -> None:
        config = stream.config
        self.config = config
        self.providers = providers
        self.signing_secret = signing_secret
        self.return_to = ReturnToPolicy(config.auth.auth_domain, config.auth.allowed_domain_patterns,
                                        config.environment == "production")
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    @classmethod
    def from_config(cls, stream: Any, environ: Mapping[str, str] | None = None) -> OAuth:
        environ = os.environ if environ is None else environ
        auth = stream.config.auth
        providers = {}
        for name in ("github", "google"):
            client_id = environ.get(f"{name.upper()}_CLIENT_ID")
            client_secret = environ.get(f"{name.upper()}_CLIENT_SECRET")
            if client_id and client_secret:
                providers[name] = Provider(name, client_id, client_secret, getattr(auth, f"{name}_authorize_url"),
                                           getattr(auth, f"{name}_token_url"), getattr(auth, f"{name}_user_url"))
        secret = next((environ[v] for v in SECRET_VARS if environ.get(v)), None)
        return cls(stream, providers, secret if auth.algorithm == "HS256" else None)

    async def handle(self, scope: Any, proto: Any) -> None:
        parts = scope.path.strip("/").split("/")
        if scope.method not in ("GET", "HEAD") or len(parts) != 3 or parts[1] not in ("login", "callback"):
            return _json(proto, 404, {"error": "Not Found"})
        provider = self.providers.get(parts[2])
        if provider is None:
            return _json(proto, 404, {"error": f"Unknown or unconfigured sign-in provider: {parts[2]}"})
        query = urllib.parse.parse_qs(scope.query_string, keep_blank_values=True)
        if parts[1] == "login":
            return self._login(scope, proto, provider, query)
        return await self._callback(scope, proto, provider, query)

    # ------------------------------------------------------------------ /auth/login/{provider}

    def _login(self, scope: Any, proto: Any, provider: Provider, query: dict[str, list[str]]) -> None:
        return_to = _first(query, "return_to")
        if return_to is not None:
            problem = self.return_to.check(return_to)
            if problem is not None:
                return _json(proto, 400, {"error": f"Invalid return_to: {problem}"})
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        self._remember(state, _Pending(provider.name, verifier, return_to, time.monotonic()))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "response_type": "code", "client_id": provider.client_id,
            "redirect_uri": self._redirect_uri(scope, provider), "scope": _SCOPES[provider.name],
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        }
        location = provider.authorize_url + ("&" if "?" in provider.authorize_url else "?") + \
            urllib.parse.urlencode(params)
        proto.response_empty(302, [("location", location), ("cache-control", "no-store")])

    def _remember(self, state: str, pending: _Pending) -> None:
        now = time.monotonic()
        while self._pending:  # oldest first: drop expired ones, and the oldest when full
            oldest = next(iter(self._pending.values()))
            if now - oldest.created <= _STATE_TTL_S and len(self._pending) < _MAX_PENDING:
                break
            self._pending.popitem(last=False)
        self._pending[state] = pending

    def _redirect_uri(self, scope: Any, provider: Provider) -> str:
        base = self.config.auth.public_url.rstrip("/")
        if not base:
            scheme = "https" if self.config.tls.cert_file else "http"
            base = f"{scheme}://{scope.headers.get('host') or scope.server}"
        return f"{base}/auth/callback/{provider.name}"

    # ------------------------------------------------------------------ /auth/callback/{provider}

    async def _callback(self, scope: Any, proto: Any, provider: Provider, query: dict[str, list[str]]) -> None:
        if _first(query, "error"):
            return _json(proto, 400, {"error": f"Sign-in refused by {provider.name}: {_first(query, 'error')}"})
        state, code = _first(query, "state"), _first(query, "code")
        pending = self._pending.pop(state, None) if state else None  # one use only
        if pending is None or pending.provider != provider.name or time.monotonic() - pending.created > _STATE_TTL_S:
            return _json(proto, 400, {"error": "Invalid or expired state"})
        if not code:
            return _json(proto, 400, {"error": "Missing authorization code"})
        if self.signing_secret is None:
            return _json(proto, 501, {"error": "Sign-in needs UE_AUTH_SECRET to sign stream tokens"})
        try:
            user_id = await asyncio.to_thread(self._exchange, provider, code, pending.verifier,
                                              self._redirect_uri(scope, provider))
        except _ExchangeFailed as exc:
            log.warning("sign-in with %s failed: %s", provider.name, exc)
            return _json(proto, 502, {"error": f"Sign-in with {provider.name} failed: {exc}"})
        auth = self.config.auth
        ttl = auth.login_token_ttl_s
        token = create_token(self.signing_secret, sub=f"{provider.name}:{user_id}", role=auth.login_role,
                             sub_topics=list(auth.login_sub_topics), pub_topics=list(auth.login_pub_topics), ttl_s=ttl)
        secure = "; Secure" if self.config.tls.cert_file or self.config.environment == "production" else ""
        cookie = ("set-cookie", f"{SESSION_COOKIE}={token}; Path=/; HttpOnly{secure}; SameSite=Lax; Max-Age={ttl}")
        if pending.return_to is None:
            return _json(proto, 200, {"token": token, "expires_in": ttl, "sub": f"{provider.name}:{user_id}"},
                         [cookie])
        separator = "&" if "?" in pending.return_to else "?"
        target, _, fragment = pending.return_to.partition("#")
        location = f"{target}{separator}auth_token={urllib.parse.quote(token)}" + (f"#{fragment}" if fragment else "")
        proto.response_empty(302, [("location", location), ("cache-control", "no-store"), cookie])

    def _exchange(self, provider: Provider, code: str, verifier: str, redirect_uri: str) -> str:
        """Code → access token → user id (runs in a worker thread: blocking HTTP)."""
        form = urllib.parse.urlencode({
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": provider.client_id, "client_secret": provider.client_secret, "code_verifier": verifier,
        }).encode()
        tokens = _fetch_json(urllib.request.Request(provider.token_url, data=form, method="POST", headers={
            "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}))
        access = tokens.get("access_token")
        if not isinstance(access, str) or not access:
            raise _ExchangeFailed(f"no access_token in the token response ({tokens.get('error', 'no error given')})")
        user = _fetch_json(urllib.request.Request(provider.user_url, headers={
            "Accept": "application/json", "Authorization": f"Bearer {access}"}))
        user_id = user.get("id") if provider.name == "github" else user.get("sub")
        if user_id is None or isinstance(user_id, (dict, list)) or str(user_id) == "":
            raise _ExchangeFailed("the user response has no id")
        return str(user_id)


class _ExchangeFailed(Exception):
    pass


def _fetch_json(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=_EXCHANGE_TIMEOUT_S) as resp:
            data = orjson.loads(resp.read(1 << 20))
    except urllib.error.HTTPError as exc:
        raise _ExchangeFailed(f"{request.full_url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise _ExchangeFailed(f"{request.full_url}: {exc}") from None
    if not isinstance(data, dict):
        raise _ExchangeFailed(f"{request.full_url} did not answer a JSON object")
    return data


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _json(proto: Any, status: int, body: Any, extra: list[tuple[str, str]] | None = None) -> None:
    proto.response_bytes(status, [("content-type", "application/json"), ("cache-control", "no-store"), *(extra or [])],
                         orjson.dumps(body))
