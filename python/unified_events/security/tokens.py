"""Stream tokens: JWTs carrying a role and the topic patterns their holder may use.

Claims: `sub`, `exp`, `iat`, `role` (admin, publisher, subscriber), `sub_topics` (patterns the holder
may subscribe to) and `pub_topics` (patterns it may publish to). HS256 is keyed by UE_AUTH_SECRET
(alias BETTER_AUTH_SECRET); RS256/ES256 by a PEM public key or a JWKS file (keys chosen by `kid`).
Only the configured algorithm is accepted, so an `alg: none` or an HS256 token signed with a public
key is refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson

from .. import _core
from ..errors import ConfigError

ROLES = ("admin", "publisher", "subscriber")
ALGORITHMS = ("HS256", "RS256", "ES256")
SECRET_VARS = ("UE_AUTH_SECRET", "BETTER_AUTH_SECRET")
SESSION_COOKIE = "ue_session"  # set by OAuth sign-in (oauth.py), read by Security.session_token
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash


class TokenRejected(Exception):
    """A token that does not verify. The message is safe to show to the client."""


@dataclass(frozen=True, slots=True)
class Rights:
    """What one token allows. `None` topic lists mean "every topic" (admin, or auth off)."""

    sub: str
    role: str
    sub_topics: tuple[str, ...] | None
    pub_topics: tuple[str, ...] | None
    exp: float | None  # epoch seconds

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_subscribe(self, topic: str) -> bool:
        return _covered(self.sub_topics, topic)

    def may_publish(self, topic: str) -> bool:
        return self.role in ("admin", "publisher") and _covered(self.pub_topics, topic)


def _covered(patterns: tuple[str, ...] | None, topic: str) -> bool:
    # The allowed entry is the pattern, the requested topic the subject (original §3.3).
    return patterns is None or any(_core.topic_matches(p, topic) for p in patterns)


ANONYMOUS = Rights("anonymous", "admin", None, None, None)  # what a connection has with auth off


def rights_from_claims(claims: Mapping[str, Any]) -> Rights:
    role = claims.get("role", "subscriber")
    if role not in ROLES:
        raise TokenRejected(f"Token role must be one of {', '.join(ROLES)}")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRejected("Token has no subject (sub)")
    exp = claims.get("exp")
    admin = role == "admin"
    return Rights(sub, role, _patterns(claims, "sub_topics", admin), _patterns(claims, "pub_topics", admin),
                  float(exp) if isinstance(exp, (int, float)) else None)


def _patterns(claims: Mapping[str, Any], key: str, admin: bool) -> tuple[str, ...] | None:
    value = claims.get(key)
    if value is None:
        return None if admin else ()  # an admin without a list may use everything; others nothing
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise TokenRejected(f"Token claim {key} must be a list of topic patterns")
    return tuple(value)


class TokenVerifier:
    """Verifies stream tokens with the one configured algorithm and key."""

    def __init__(self, algorithm: str, key: Any = None, jwks: jwt.PyJWKSet | None = None,
                 leeway_s: float = 5.0) -> None:
        self.algorithm = algorithm
        self._key = key
        self._jwks = jwks
        self._leeway = leeway_s

    @classmethod
    def from_config(cls, auth: Any, environ: Mapping[str, str]) -> TokenVerifier | None:
        """None when no key is configured at all (then require_auth needs a custom validator)."""
        algorithm = auth.algorithm
        if algorithm == "HS256":
            secret = next((environ[v] for v in SECRET_VARS if environ.get(v)), None)
            if secret is None:
                return None
            if len(secret.encode()) < _MIN_SECRET_BYTES:
                raise ConfigError("UE_AUTH_SECRET", "<hidden>",
                                  f"at least {_MIN_SECRET_BYTES} bytes (generate one with: openssl rand -base64 32)")
            return cls(algorithm, secret)
        if auth.jwks_file:
            try:
                return cls(algorithm, jwks=jwt.PyJWKSet.from_json(Path(auth.jwks_file).read_text()))
            except (OSError, jwt.PyJWTError, ValueError) as exc:
                raise ConfigError("auth.jwks_file", auth.jwks_file, f"a readable JWKS JSON file ({exc})") from None
        if auth.public_key_file:
            try:
                return cls(algorithm, Path(auth.public_key_file).read_text())
            except OSError as exc:
                raise ConfigError("auth.public_key_file", auth.public_key_file,
                                  f"a readable PEM public key ({exc})") from None
        return None

    def verify(self, token: object) -> Rights:
        if not isinstance(token, str) or not token:
            raise TokenRejected("Token is empty or missing")
        key = self._key
        try:
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                matches = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
                if not matches:
                    raise TokenRejected("Token key id (kid) is unknown")
                key = matches[0]
            claims = jwt.decode(token, key, algorithms=[self.algorithm], leeway=self._leeway,
                                options={"require": ["sub", "exp"]})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("Token is expired") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("Token signature is invalid") from None
        except jwt.DecodeError:
            raise TokenRejected("Invalid token format") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"Invalid token: {exc}") from None
        return rights_from_claims(claims)


def create_token(secret_or_key: Any, *, sub: str, role: str, sub_topics: list[str] | None = None,
                 pub_topics: list[str] | None = None, ttl_s: int = 3600, algorithm: str = "HS256",
                 kid: str | None = None, now: float | None = None) -> str:
    """Sign a stream token. `secret_or_key` is the HS256 secret or a PEM private key."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    for pattern in (sub_topics or []) + (pub_topics or []):
        problem = _core.check_topic(pattern)
        if problem is not None:
            raise ValueError(f"invalid topic pattern {pattern!r}: {problem[1]}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": issued, "exp": issued + int(ttl_s)}
    if sub_topics is not None:
        claims["sub_topics"] = list(sub_topics)
    if pub_topics is not None:
        claims["pub_topics"] = list(pub_topics)
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, secret_or_key, algorithm=algorithm, headers=headers)


def rights_from_validator(result: Any) -> Rights | None:
    """A custom validator's answer as Rights; None when it refuses.

    Accepts the original's shapes (a bool, or {valid, allowedTopics}) and ours ({valid, role,
    sub, sub_topics, pub_topics, exp}). A validator that says only "valid" grants what the
    original did: every topic, publishing included."""
    if result is True:
        return Rights("validator", "admin", None, None, None)
    if not isinstance(result, dict) or not result.get("valid"):
        return None
    allowed = result.get("allowedTopics", result.get("allowed_topics", result.get("sub_topics")))
    pub = result.get("pub_topics", result.get("pubTopics"))
    role = result.get("role") or ("admin" if allowed is None and pub is None else "publisher")
    if role not in ROLES:
        return None
    exp = result.get("exp")
    return Rights(str(result.get("sub") or "validator"), role,
                  tuple(allowed) if allowed is not None else None,
                  tuple(pub) if pub is not None else (None if role == "admin" else tuple(allowed or ())),
                  float(exp) if isinstance(exp, (int, float)) else None)


def describe(rights: Rights) -> dict[str, Any]:
    return {"sub": rights.sub, "role": rights.role, "sub_topics": rights.sub_topics,
            "pub_topics": rights.pub_topics, "exp": rights.exp}


def dumps_claims(token: str) -> bytes:
    """The unverified claims of a token, for `token create --json` output."""
    return orjson.dumps(jwt.decode(token, options={"verify_signature": False}))
