"""Servers the harness starts itself: unified-events (`serve` with a temporary config and data
directory on free loopback ports) or the `websockets` baseline in `bench/baseline_server.py`.

A scenario that restarts the server (`recovery`) or compares against the baseline needs to own
the process; everything else can run against any `--url`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .procstat import die_with_parent, free_ports

HOST = "127.0.0.1"

# Limits a load test must lift so the server's per-connection protection does not throttle it
# (bench/README.md, Method). A scenario's [server] table overrides any of them.
BENCH_SETTINGS: dict[str, Any] = {
    "log_level": "info",          # the "listening" lines tell us the server is up
    "max_connections": 19000,     # ulimit -n is 20000 on the bench machine
    "max_queued_bytes": 16 * 1024 * 1024,
    "max_pending_messages": 100_000,
    "drain_timeout_ms": 1000,     # a restart should not wait 5 s for clients to leave
    "rate_limit": {"messages_per_second": 10_000_000, "burst_size": 10_000_000},
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _toml(settings: dict[str, Any]) -> str:
    top = [f"{k} = {_toml_value(v)}" for k, v in settings.items() if not isinstance(v, dict)]
    tables = []
    for key, table in settings.items():
        if isinstance(table, dict):
            tables.append(f"[{key}]")
            tables += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(top + tables) + "\n"


def find_baseline_script() -> Path | None:
    """`bench/baseline_server.py` of a source checkout (the current directory or the package's)."""
    here = Path(__file__).resolve()
    for root in (Path.cwd(), *here.parents):
        candidate = root / "bench" / "baseline_server.py"
        if candidate.is_file():
            return candidate
    return None


class SpawnedServer:
    """One server process; `restart()` keeps its ports and data directory."""

    def __init__(self, kind: str = "unified", settings: dict[str, Any] | None = None,
                 workdir: Path | None = None) -> None:
        if kind not in ("unified", "baseline"):
            raise ValueError(f"unknown server kind {kind!r}")
        self.kind = kind
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix=f"ue-bench-{kind}-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        ws_port, http_port = free_ports(2)
        self.ws_port = ws_port
        self.http_port: int | None = http_port if kind == "unified" else None
        self.settings = {**BENCH_SETTINGS, **(settings or {})}
        if "rate_limit" in (settings or {}):
            self.settings["rate_limit"] = {**BENCH_SETTINGS["rate_limit"], **settings["rate_limit"]}  # type: ignore[index]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{kind}-server.log"
        self.starts = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}/events"

    @property
    def http_url(self) -> str | None:
        return f"http://{HOST}:{self.http_port}" if self.http_port else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        if self.kind == "unified":
            config = self.workdir / "server.toml"
            config.write_text(_toml({"host": HOST, "http_port": self.http_port, "ws_port": self.ws_port,
                                     "data_dir": str(self.workdir / "data"), **self.settings}))
            return [sys.executable, "-m", "unified_events.cli", "serve", "--config", str(config)]
        script = find_baseline_script()
        if script is None:
            raise RuntimeError("bench/baseline_server.py not found: run from a source checkout")
        return [sys.executable, str(script), "--host", HOST, "--port", str(self.ws_port)]

    async def start(self, timeout_s: float = 60) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("UE_") and k != "ENVIRONMENT"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, env=env, preexec_fn=die_with_parent)
        marker = f"listening ws://{HOST}:{self.ws_port}/events"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.log_path.read_text(errors="replace").count(marker) >= self.starts:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.kind} server not listening after {timeout_s} s:\n{self.log_tail()}")

    async def stop(self, timeout_s: float = 15) -> int | None:
        """SIGTERM (graceful), then SIGKILL after `timeout_s`; never blocks the loop."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    async def restart(self, crash: bool = False) -> float:
        """Stop (SIGTERM, or SIGKILL when `crash`) and start again on the same ports and data
        directory; returns the downtime in s."""
        began = time.monotonic()
        if crash:
            self.kill()
        else:
            await self.stop()
        await self.start()
        return time.monotonic() - began

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def cleanup(self) -> None:
        self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()
