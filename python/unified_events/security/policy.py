"""Who may do what: the one table of HTTP routes and WebSocket frames to required rights.

Rules match by path prefix (segment-wise: `/query` covers `/query`, `/query/unified` and any
later `/query/...` route, but not `/queryx`), so routes added later fall under the rule of their
prefix. A path no rule names needs admin: new endpoints are closed until someone opens them.
"""

from __future__ import annotations

from enum import Enum

from .tokens import Rights


class Need(Enum):
    OPEN = "open"            # no token
    PUBLISH = "publish"      # publisher or admin; the event topics must be in pub_topics
    ADMIN = "admin"
    METRICS = "metrics"      # admin, the scrape token (UE_METRICS_TOKEN), or loopback when configured


HTTP_RULES: tuple[tuple[str, Need], ...] = (
    ("/health", Need.OPEN),
    ("/auth", Need.OPEN),        # OAuth sign-in: the way to get a token
    ("/broadcast", Need.PUBLISH),
    ("/query", Need.ADMIN),      # /query, /query/unified, /query/trace, /query/session, ...
    ("/stats", Need.ADMIN),
    ("/metrics", Need.METRICS),
)

# WebSocket frames other than subscribe/unsubscribe/ping/refresh_token (checked per topic or
# always allowed). A type containing "query" (subscribe_query, unsubscribe_query, ...) is admin.
FRAME_RULES: dict[str, Need] = {
    "publish": Need.PUBLISH,
}


def http_need(path: str) -> Need:
    for prefix, need in HTTP_RULES:
        if path == prefix or path.startswith(prefix + "/"):
            return need
    return Need.ADMIN


def frame_need(kind: object) -> Need:
    if not isinstance(kind, str):
        return Need.OPEN  # ignored by the protocol anyway
    if "query" in kind:
        return Need.ADMIN
    return FRAME_RULES.get(kind, Need.OPEN)


def role_allows(rights: Rights, need: Need) -> bool:
    """The role part of a rule (topic coverage for PUBLISH is checked where the topic is known)."""
    if need is Need.OPEN:
        return True
    if need is Need.PUBLISH:
        return rights.role in ("admin", "publisher")
    return rights.is_admin
