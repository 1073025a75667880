"""Security headers on every HTTP response, and CORS with an explicit list of origins."""

from __future__ import annotations

from typing import Any

# The API serves JSON only: nothing may be loaded, framed or sniffed from its responses.
_BASE = (
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)


def security_headers(config: Any) -> list[tuple[str, str]]:
    headers = list(_BASE)
    if config.tls.cert_file:
        headers.append(("strict-transport-security", f"max-age={config.tls.hsts_max_age_s}; includeSubDomains"))
    return headers


class Cors:
    ALLOWED_METHODS = "GET, POST, OPTIONS"
    ALLOWED_HEADERS = "authorization, content-type, last-event-id"

    def __init__(self, config: Any) -> None:
        self.origins = frozenset(config.cors.allowed_origins)
        self.any_origin = "*" in self.origins  # refused in production by config.py
        self.credentials = config.cors.allow_credentials
        self.max_age = config.cors.max_age_s

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (self.any_origin or origin in self.origins)

    def headers(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers for an actual request from `origin`; none when the origin is not allowed
        (the browser then withholds the response from the page)."""
        if not self.allows(origin):
            return []
        assert origin is not None
        headers = [("access-control-allow-origin", origin), ("vary", "Origin")]
        if self.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        return headers

    def preflight(self, origin: str | None) -> list[tuple[str, str]]:
        return self.headers(origin) + [
            ("access-control-allow-methods", self.ALLOWED_METHODS),
            ("access-control-allow-headers", self.ALLOWED_HEADERS),
            ("access-control-max-age", str(self.max_age)),
        ]
