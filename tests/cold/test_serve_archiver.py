"""`serve` starts the archiver, restarts it when it dies, reports it in /health and /metrics."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.cold.util import cold_settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _niceness(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])  # field 19 of proc(5)


def _archiver_pid(tmp_path: Path) -> int | None:
    try:
        return json.loads((tmp_path / "data" / "archiver" / "status.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_serve_supervises_the_archiver(make_server: Any, tmp_path: Path) -> None:
    srv = make_server(cold_settings(tmp_path))
    first = srv.wait_for(lambda: _archiver_pid(tmp_path), timeout=20)
    # cold.nice (default 10): the archiver yields the CPU to the server acknowledging events
    assert _niceness(first) == _niceness(srv.process.pid) + 10
    status, health = srv.json("GET", "/health")
    assert status == 200
    srv.wait_for(lambda: srv.json("GET", "/health")[1]["archiver"]["running"], timeout=5)
    archiver = srv.metrics()["archiver"]
    assert archiver["enabled"] is True and archiver["errors_total"] == 0
    _, _, text = srv.request("GET", "/metrics", headers={"Accept": "text/plain"})
    assert b"eventstream_archiver_up 1" in text

    os.kill(first, signal.SIGKILL)  # the server notices and starts another one
    second = srv.wait_for(lambda: (pid := _archiver_pid(tmp_path)) != first and pid, timeout=20)
    assert _alive(second)
    assert "archiver: exited with code -9" in srv.log()

    srv.stop()  # SIGTERM: the archiver is stopped with the server
    assert srv.process.returncode == 0
    assert not _alive(second)


def test_archiver_exits_when_the_server_is_killed(make_server: Any, tmp_path: Path) -> None:
    srv = make_server(cold_settings(tmp_path))
    pid = srv.wait_for(lambda: _archiver_pid(tmp_path), timeout=20)
    srv.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the archiver outlived its server"


def test_cold_disabled_starts_no_archiver(make_server: Any, tmp_path: Path) -> None:
    srv = make_server({"cold": {"enabled": False}})
    assert srv.json("GET", "/health")[1]["archiver"] == {"enabled": False}
    time.sleep(0.5)
    assert not (tmp_path / "data" / "archiver" / "status.json").exists()
