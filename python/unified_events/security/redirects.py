"""Where a sign-in may send the browser back to (`return_to`): the open-redirect gate.

Allowed: a same-origin path (`/dashboard?x=1`), or an absolute https URL whose host is the auth
domain or matches an allowed pattern. A pattern's `*` is exactly one DNS label (`*.example.com`
matches `app.example.com`, not `example.com` nor `a.b.example.com`); everything else in a
pattern is literal (the original left regex metacharacters unescaped). Anything ambiguous is
refused rather than normalised: backslashes, control characters, userinfo (`@`), percent-escapes
in the scheme or host, scheme-relative `//host`, non-ASCII hosts, and plain http in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

_MAX_LENGTH = 2048
_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?$")
_LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"


def pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = [(_LABEL if part == "*" else re.escape(part.lower())) for part in pattern.split(".")]
    return re.compile("^" + r"\.".join(parts) + "$")


class ReturnToPolicy:
    def __init__(self, auth_domain: str, patterns: Iterable[str], production: bool) -> None:
        self.auth_domain = auth_domain.lower()
        self.patterns = [pattern_regex(p) for p in patterns]
        self.production = production

    def check(self, value: object) -> str | None:
        """None when `value` is a safe place to return to, else why it is refused."""
        if not isinstance(value, str) or not value:
            return "return_to must be a non-empty URL"
        if len(value) > _MAX_LENGTH:
            return f"return_to is longer than {_MAX_LENGTH} characters"
        if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value) or not value.isascii():
            return "return_to contains characters that are not allowed (backslash, whitespace, control, non-ASCII)"
        if value.startswith("/"):
            decoded = unquote(value)
            if value.startswith("//") or decoded.startswith("//") or decoded.startswith("/\\"):
                return "return_to must not be scheme-relative (//host)"
            return None
        scheme, sep, _ = value.partition(":")
        if not sep or scheme.lower() not in ("https", "http"):
            return "return_to must be an https URL or a path starting with /"
        if scheme.lower() == "http" and self.production:
            return "return_to must use https in production"
        if not value[len(scheme) + 1:].startswith("//"):
            return "return_to must be an absolute URL (scheme://host/...)"
        parts = urlsplit(value)
        netloc = parts.netloc
        if "@" in netloc:
            return "return_to must not contain userinfo (user@host)"
        if "%" in netloc or not _HOST.match(netloc.lower()):
            return "return_to host is not a plain DNS name"
        host = netloc.lower()
        if host == self.auth_domain or any(p.match(host) for p in self.patterns):
            return None
        return f"return_to host {host} is not an allowed domain"
