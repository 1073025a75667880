"""Token helpers shared by the protocol and security/.

`check_token_format` is the original's default refresh check (original-system.md §3.6): three
base64url segments, and an `exp` in the past is refused. It does NOT verify a signature, so it
only decides a refresh when no key, no validator and no require_auth are configured; otherwise
security/ws_guard.py verifies the token (security/tokens.py) and replaces the connection's rights.
"""

from __future__ import annotations

import base64
import inspect
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from . import _core

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(slots=True)
class TokenDecision:
    valid: bool
    allowed_topics: list[str] | None = None
    error: str | None = None


def check_token_format(token: object) -> str | None:
    """The error text for a malformed or expired token, or None when it passes."""
    if token is None or token == "":
        return "Token is empty or missing"
    if not isinstance(token, str):
        return "Token must be a string"
    parts = token.split(".")
    if len(parts) != 3:
        return "Invalid token format: expected three segments"
    if not all(_SEGMENT.match(p) for p in parts):
        return "Invalid token format: segments must be base64url encoded"
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = orjson.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, orjson.JSONDecodeError):
        return None  # the original accepts a payload it cannot decode
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, (int, float)) and exp < int(time.time()):
        return "Token is expired"
    return None


async def run_validator(validator: Any, token: str) -> TokenDecision:
    """Call a sync or async validator returning a bool or {valid, allowedTopics?, error?}."""
    result = validator(token)
    if inspect.isawaitable(result):
        result = await result
    return decision_from(result)


def decision_from(result: Any) -> TokenDecision:
    """A validator's answer (bool or {valid, allowedTopics?, error?}) as a TokenDecision."""
    if isinstance(result, bool):
        return TokenDecision(result)
    if isinstance(result, dict):
        allowed = result.get("allowedTopics", result.get("allowed_topics"))
        return TokenDecision(bool(result.get("valid")), list(allowed) if allowed is not None else None,
                             result.get("error"))
    return TokenDecision(False, error="Token validation failed")


def bearer_token(query_token: str | None, authorization: str | None) -> str | None:
    """`?token=` wins; else the Authorization header with the literal `Bearer ` prefix removed."""
    if query_token:
        return query_token
    if authorization and authorization.startswith("Bearer "):
        return authorization[len("Bearer "):] or None
    return None


def topic_allowed(allowed_topics: list[str] | None, topic: str) -> bool:
    """A requested topic or pattern is allowed when an allowed pattern matches it as a subject
    (original §3.3: allowed `user.*` does not authorise a requested `user.123.*`). None allows all."""
    return allowed_topics is None or any(_core.topic_matches(p, topic) for p in allowed_topics)
