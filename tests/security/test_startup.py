"""Start-up refusals (issue 5): insecure or unusable configurations never start."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import free_port, free_ports, recv_json, start_server, write_config
from tests.security.conftest import SECRET, bearer, token, upgrade_status


def refused(tmp_path, settings, env=None, args=()):
    """Run `serve` and expect it to exit with 2 before listening; returns its stderr."""
    path = tmp_path / f"refused-{free_port()}.toml"
    http_port, ws_port = free_ports(2)
    write_config(path, {"http_port": http_port, "ws_port": ws_port, "data_dir": str(tmp_path / "d"), **settings})
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("UE_") and k not in ("ENVIRONMENT", "BETTER_AUTH_SECRET")}
    proc = subprocess.run([sys.executable, "-m", "unified_events.cli", "serve", "--config", str(path), *args],
                          env={**environ, **(env or {})}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    return proc.stderr


def test_require_auth_without_a_key(tmp_path):
    err = refused(tmp_path, {"require_auth": True})
    assert "require_auth" in err and "UE_AUTH_SECRET" in err


def test_short_secret(tmp_path):
    assert "at least 32 bytes" in refused(tmp_path, {"require_auth": True}, {"UE_AUTH_SECRET": "short"})


def test_rs256_without_a_public_key(tmp_path):
    assert "auth.public_key_file" in refused(tmp_path, {"require_auth": True, "auth": {"algorithm": "RS256"}})


def test_production_without_auth(tmp_path):
    err = refused(tmp_path, {}, {"ENVIRONMENT": "production"})
    assert "require_auth" in err and "allow_insecure" in err


def test_production_without_tls(tmp_path):
    err = refused(tmp_path, {"require_auth": True}, {"ENVIRONMENT": "production", "UE_AUTH_SECRET": SECRET})
    assert "tls.cert_file" in err


def test_production_wildcard_cors(tmp_path):
    err = refused(tmp_path, {"require_auth": True, "cors": {"allowed_origins": ["*"]}},
                  {"ENVIRONMENT": "production", "UE_AUTH_SECRET": SECRET})
    assert "cors.allowed_origins" in err


def test_production_allow_insecure_starts(tmp_path):
    srv = start_server(tmp_path, {"auth": {"allow_insecure": True}}, env={"ENVIRONMENT": "production"})
    try:
        assert srv.json("GET", "/health")[0] == 200
    finally:
        srv.stop()


def test_better_auth_secret_alias(make_server):
    srv = make_server({"require_auth": True}, env={"BETTER_AUTH_SECRET": SECRET})
    assert upgrade_status(srv, "x", query=f"token={token(sub_topics=['x'])}") == 101


_ASYNC_VALIDATOR_SERVER = """
import asyncio, logging, sys, uvloop
from unified_events import EventStream, load_config
from unified_events.server.app import serve

async def validator(token):
    await asyncio.sleep(0.05)  # an async look-up (a session store, an introspection call)
    if token == "good":
        return {"valid": True, "allowedTopics": ["orders.*"]}
    return {"valid": False, "error": "unknown token"}

def sync_validator(token):  # the original's acceptance cases (original-system.md §11 K.68-69)
    if token == "valid-token":
        return True
    if token == "scoped":
        return {"valid": True, "allowedTopics": ["public.*", "user.*"]}
    return False

logging.basicConfig(level=logging.INFO)
config = load_config(sys.argv[1])
chosen = validator if sys.argv[2] == "async" else sync_validator
uvloop.run(serve(config, EventStream(config, token_validator=chosen)))
"""


def _embedded(tmp_path, kind):
    from tests.conftest import Server

    script = tmp_path / "embed.py"
    script.write_text(textwrap.dedent(_ASYNC_VALIDATOR_SERVER))
    http_port, ws_port = free_ports(2)
    config = tmp_path / f"embed-{kind}.toml"
    write_config(config, {"http_port": http_port, "ws_port": ws_port, "data_dir": str(tmp_path / "e"),
                          "require_auth": True})
    log_path = tmp_path / f"embed-{kind}.log"
    proc = subprocess.Popen([sys.executable, str(script), str(config), kind], stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT)
    server = Server(proc, http_port, ws_port, log_path)
    try:
        server.wait_for(lambda: "listening ws" in server.log(), timeout=20)
    except AssertionError:
        server.stop()
        raise
    return server


def test_sync_custom_validator(tmp_path):
    server = _embedded(tmp_path, "sync")
    try:
        assert upgrade_status(server, "orders") == 401
        assert upgrade_status(server, "orders", query="token=valid-token") == 101
        assert upgrade_status(server, "orders", headers=bearer("valid-token")) == 101
        assert upgrade_status(server, "orders", query="token=nope") == 401
        assert upgrade_status(server, "admin.secrets", query="token=scoped") == 403
        assert upgrade_status(server, "user.123", query="token=scoped") == 101
        assert server.json("GET", "/stats", headers=bearer("valid-token"))[0] == 200  # plain "valid": all rights
    finally:
        server.stop()


def test_async_custom_validator(tmp_path):
    """An async validator cannot run inside picows' synchronous upgrade: the socket is accepted,
    then closed 4401/4003 if the validator refuses; frames sent meanwhile are kept."""
    from websockets.exceptions import ConnectionClosed

    server = _embedded(tmp_path, "async")
    try:
        ws = server.connect("orders.x", query="token=good", welcome=False)
        ws.send('{"type":"ping"}')  # sent before the validator has answered: kept until it has
        assert [recv_json(ws)["type"], recv_json(ws)["type"]] == ["connected", "pong"]
        bad = server.connect("orders.x", query="token=bad", welcome=False)
        with pytest.raises(ConnectionClosed) as closed:
            bad.recv(timeout=10)
        assert closed.value.rcvd.code == 4401
        forbidden = server.connect("payments", query="token=good", welcome=False)
        with pytest.raises(ConnectionClosed) as closed:
            forbidden.recv(timeout=10)
        assert closed.value.rcvd.code == 4003
        event = {"topic": "orders.x", "event": {"id": "async-1"}}
        assert server.json("POST", "/broadcast", event, headers=bearer("good"))[0] == 200
        assert recv_json(ws)["id"] == "async-1"
        assert server.json("POST", "/broadcast", event, headers=bearer("bad"))[0] == 401
        assert server.json("GET", "/stats", headers=bearer("good"))[0] == 403  # allowedTopics only: not admin
    finally:
        server.stop()


def test_embedding_require_auth_without_key_or_validator():
    from unified_events import Config, ConfigError, EventStream

    async def main() -> None:
        await EventStream(Config(require_auth=True)).start()

    old = {k: os.environ.pop(k) for k in ("UE_AUTH_SECRET", "BETTER_AUTH_SECRET") if k in os.environ}
    try:
        with pytest.raises(ConfigError) as info:
            asyncio.run(main())
    finally:
        os.environ.update(old)
    assert info.value.key == "require_auth"


def test_serve_check_runs_the_refusals(tmp_path):
    err = refused(tmp_path, {"require_auth": True}, args=("--check",))
    assert "UE_AUTH_SECRET" in err
