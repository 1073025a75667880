"""OAuth sign-in against a local provider (a real HTTP server), and the open-redirect gate."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from tests.security.conftest import AUTH_ENV, SECRET, upgrade_status
from tests.security.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeProvider


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def get(url: str) -> tuple[int, Any, bytes]:
    try:
        with _opener.open(url, timeout=15) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def provider():
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, provider):
    from tests.conftest import start_server

    server = start_server(tmp_path_factory.mktemp("oauth"), {
        "require_auth": True, "cors": {"allowed_origins": ["https://app.example.com"]},
        "auth": {"auth_domain": "auth.example.com", "allowed_domain_patterns": ["*.example.com", "example.com"],
                 "login_sub_topics": ["news.*"], "github_authorize_url": f"{provider.url}/authorize",
                 "github_token_url": f"{provider.url}/token", "github_user_url": f"{provider.url}/user"},
    }, env={**AUTH_ENV, "GITHUB_CLIENT_ID": CLIENT_ID, "GITHUB_CLIENT_SECRET": CLIENT_SECRET})
    yield server
    server.stop()


def _login(srv, return_to: str | None = None) -> tuple[str, dict[str, str]]:
    """Start a sign-in; returns the provider's redirect back to us (the callback URL) and the
    parameters we sent to the provider."""
    path = "/auth/login/github" + (f"?return_to={quote(return_to, safe='')}" if return_to else "")
    status, headers, _ = get(srv.http_url + path)
    assert status == 302, headers
    sent = {k: v[0] for k, v in parse_qs(urlsplit(headers["Location"]).query).items()}
    status, headers, _ = get(headers["Location"])  # the user approves at the provider
    assert status == 302
    return headers["Location"], sent


def test_sign_in_redirects_back_with_a_stream_token(srv):
    callback, sent = _login(srv, "https://app.example.com/done?x=1")
    assert sent["code_challenge_method"] == "S256" and len(sent["state"]) >= 32
    assert sent["redirect_uri"] == f"{srv.http_url}/auth/callback/github"
    status, headers, _ = get(callback)
    assert status == 302
    target = urlsplit(headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "app.example.com", "/done")
    query = parse_qs(target.query)
    assert query["x"] == ["1"]
    claims = jwt.decode(query["auth_token"][0], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "github:4242" and claims["role"] == "subscriber" and claims["sub_topics"] == ["news.*"]
    assert claims["exp"] - claims["iat"] == 300
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("ue_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # the state is single-use
    assert get(callback)[0] == 400


def test_session_cookie_signs_in_browsers_from_allowed_origins(srv):
    callback, _ = _login(srv)
    _, headers, _ = get(callback)
    cookie = headers["Set-Cookie"].split(";")[0]
    allowed = {"Cookie": cookie, "Origin": "https://app.example.com"}
    assert upgrade_status(srv, "news.a", headers=allowed) == 101
    assert upgrade_status(srv, "news.a", headers={**allowed, "Origin": "https://evil.com"}) == 401
    assert srv.json("GET", "/stats", headers=allowed)[0] == 403  # read as a subscriber token, not admin
    assert srv.json("GET", "/stats", headers={**allowed, "Origin": "https://evil.com"})[0] == 401


def test_sign_in_without_return_to_answers_json(srv):
    callback, _ = _login(srv)
    status, _, body = get(callback)
    assert status == 200
    token = json.loads(body)["token"]
    assert upgrade_status(srv, "news.today", query=f"token={token}") == 101
    assert upgrade_status(srv, "secret", query=f"token={token}") == 403


def test_state_and_pkce_are_checked(srv, provider):
    first, _ = _login(srv)
    second, _ = _login(srv)
    code_1 = parse_qs(urlsplit(first).query)["code"][0]
    state_2 = parse_qs(urlsplit(second).query)["state"][0]
    assert get(f"{srv.http_url}/auth/callback/github?code={code_1}&state=forged")[0] == 400
    # code issued for the first sign-in presented with the second's state: the server sends the
    # second's PKCE verifier, and the provider refuses it
    status, _, body = get(f"{srv.http_url}/auth/callback/github?code={code_1}&state={state_2}")
    assert status == 502 and b"failed" in body
    assert provider.token_requests[-1]["code_verifier"]
    assert get(f"{srv.http_url}/auth/callback/github?state={state_2}")[0] == 400  # state already used
    assert get(f"{srv.http_url}/auth/login/gitlab")[0] == 404
    assert get(f"{srv.http_url}/auth/login/google")[0] == 404  # not configured


OPEN_REDIRECTS = [
    "https://evil.com/",
    "//evil.com",
    "///evil.com",
    "https://example.com.evil.com/",
    "https://evil.com\\@example.com",
    "https://example.com@evil.com/",
    "https://user:pass@app.example.com/",
    "https://example.com%2F@evil.com",
    "https://evil%2Ecom/",
    "https:%2F%2Fevil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "/%2F%2Fevil.com",
    "/%5Cevil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "HTTPS://EVIL.COM/",
    "https://a.b.example.com/",
    "https://evil.com#@app.example.com",
    "https://evil.com?@app.example.com",
    "https://app.example.com\t.evil.com/",
    "https://app.example.com:443@evil.com/",
    "https:evil.com",
    "https:/evil.com",
    "https://\u0435xample.com/",
    " https://app.example.com/",
]


@pytest.mark.parametrize("return_to", OPEN_REDIRECTS)
def test_open_redirects_are_refused(srv, return_to):
    status, _, body = get(f"{srv.http_url}/auth/login/github?return_to={quote(return_to, safe='')}")
    assert status == 400 and b"Invalid return_to" in body


@pytest.mark.parametrize("return_to", ["https://app.example.com/x", "https://example.com/", "/dashboard?tab=1",
                                       "https://auth.example.com/after", "https://APP.example.com/"])
def test_allowed_return_to(srv, return_to):
    assert get(f"{srv.http_url}/auth/login/github?return_to={quote(return_to, safe='')}")[0] == 302


def test_plain_http_return_to_refused_in_production(tmp_path, provider):
    from unified_events.security.redirects import ReturnToPolicy

    assert ReturnToPolicy("", ["*.example.com"], production=True).check("http://app.example.com/") is not None
    assert ReturnToPolicy("", ["*.example.com"], production=False).check("http://app.example.com/") is None
