"""End-to-end fixtures: a real `unified-events serve` process on free loopback ports, real clients."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from unified_events.loadgen.procstat import free_ports

STARTUP_TIMEOUT_S = 20


def free_port() -> int:
    return free_ports(1)[0]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def write_config(path: Path, settings: dict[str, Any]) -> None:
    lines, tables = [], []
    for key, value in settings.items():
        if isinstance(value, dict):
            tables.append(f"[{key}]")
            tables.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    path.write_text("\n".join(lines + tables) + "\n")


@dataclass
class Server:
    """A running server process and helpers to talk to it."""

    process: subprocess.Popen[str]
    http_port: int
    ws_port: int
    log_path: Path
    clients: list[ClientConnection] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.http_url + path, data=data, method=method, headers=headers or {})
        if data is not None and "Content-Type" not in (headers or {}):
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, payload = self.request(method, path, body, **kw)
        return status, json.loads(payload) if payload else None

    def broadcast(self, topic: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
        status, payload = self.json("POST", "/broadcast", {"topic": topic, "event": event or {}})
        assert status == 200, payload
        return payload

    def connect(self, *topics: str, query: str = "", headers: dict[str, str] | None = None,
                welcome: bool = True) -> ClientConnection:
        params = "&".join(f"topic={t}" for t in topics)
        if query:
            params = f"{params}&{query}" if params else query
        url = f"{self.ws_url}/events" + (f"?{params}" if params else "")
        ws = connect(url, additional_headers=headers, open_timeout=10, max_size=None)
        self.clients.append(ws)
        if welcome:
            frame = json.loads(ws.recv(timeout=5))
            assert frame["type"] == "connected", frame
        return ws

    def metrics(self) -> dict[str, Any]:
        status, payload = self.json("GET", "/metrics")
        assert status == 200
        return payload

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("condition not met in time")

    def close_clients(self) -> None:
        for ws in self.clients:
            try:
                ws.close()
            except Exception:
                pass
        self.clients.clear()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        self.close_clients()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _limit_file_size(max_bytes: int) -> Any:
    """A `preexec_fn` for a child that may write no file past `max_bytes`: a write beyond it fails
    with EFBIG (SIGXFSZ ignored, so it is not killed): a disk failing under a real server, no root."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def start_server(tmp_path: Path, settings: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, max_file_bytes: int | None = None) -> Server:
    """`max_file_bytes`: RLIMIT_FSIZE of the server process (its log file counts too)."""
    http_port, ws_port = free_ports(2)
    # The archiver is off unless a test asks for it: it costs CPU the other tests do not need.
    config = {"http_port": http_port, "ws_port": ws_port, "data_dir": str(tmp_path / "data"),
              "cold": {"enabled": False}, **(settings or {})}
    config_path = tmp_path / f"config-{http_port}.toml"
    write_config(config_path, config)
    log_path = tmp_path / f"server-{http_port}.log"
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("UE_") and k != "ENVIRONMENT"}
    process_env.update(env or {})
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "unified_events.cli", "serve", "--config", str(config_path), *(extra_args or [])],
        stdout=log_file, stderr=subprocess.STDOUT, text=True, env=process_env,
        preexec_fn=_limit_file_size(max_file_bytes) if max_file_bytes is not None else None,
    )
    server = Server(process, http_port, ws_port, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        text = server.log()
        if "listening http" in text and "listening ws" in text:
            return server
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not start in {STARTUP_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One default server per test module; clients are closed after each test."""
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _close_clients(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").close_clients()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Start servers with custom settings; all are stopped at the end of the test."""
    started: list[Server] = []

    def factory(settings: dict[str, Any] | None = None, **kw: Any) -> Server:
        srv = start_server(tmp_path, settings, **kw)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def recv_all(ws: ClientConnection, quiet: float = 0.3) -> list[dict[str, Any]]:
    """Every frame until the socket is quiet for `quiet` seconds."""
    frames = []
    while True:
        try:
            frames.append(json.loads(ws.recv(timeout=quiet)))
        except TimeoutError:
            return frames
