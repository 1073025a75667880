"""Fixtures for the security tests: a server with require_auth on, and tokens signed for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import Server, start_server

SECRET = "test-secret-0123456789abcdef-0123456789"  # 39 bytes: long enough for HS256
AUTH_ENV = {"UE_AUTH_SECRET": SECRET}


def token(sub: str = "alice", role: str = "subscriber", sub_topics: list[str] | None = None,
          pub_topics: list[str] | None = None, ttl: float = 600, secret: str = SECRET, **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl, **extra}
    if sub_topics is not None:
        claims["sub_topics"] = sub_topics
    if pub_topics is not None:
        claims["pub_topics"] = pub_topics
    return jwt.encode(claims, secret, algorithm="HS256")


ADMIN = token("root", "admin")


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def upgrade_status(server: Server, *topics: str, query: str = "", headers: dict[str, str] | None = None) -> int:
    """101 when the upgrade succeeds, else the HTTP status it was refused with."""
    try:
        server.connect(*topics, query=query, headers=headers)
    except InvalidStatus as exc:
        return exc.response.status_code
    return 101


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("auth"), {"require_auth": True}, env=AUTH_ENV)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _close_module_server_clients(request: pytest.FixtureRequest) -> Iterator[None]:
    """Module-scoped servers here are `auth_server` or `srv`: close each test's clients, and wait
    until the server has seen them go (per-address connection limits count them)."""
    yield
    for name in ("auth_server", "srv"):
        if name in request.fixturenames:
            server = request.getfixturevalue(name)
            server.close_clients()
            server.wait_for(lambda s=server: s.json("GET", "/health")[1]["connections"] == 0, timeout=10)
