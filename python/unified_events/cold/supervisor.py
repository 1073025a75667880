"""`serve` runs the archiver as a child process and restarts it when it dies.

The archiver is a separate process because an Iceberg append holds the GIL for up to a second
(decisions.md). The child gets the server's exact configuration (as JSON) and the server's pid: it
exits by itself when the server is gone, even after a SIGKILL, so a restarted server never races an
orphan for long (and the archiver lock keeps them from writing at the same time anyway).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys

import orjson

from ..config import Config
from .status import archiver_dir

log = logging.getLogger("unified_events.archiver")

_MIN_BACKOFF_S = 1.0
_MAX_BACKOFF_S = 60.0
_HEALTHY_AFTER_S = 60.0  # a run this long resets the backoff
_STOP_TIMEOUT_S = 10.0


class ArchiverSupervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        config_path = archiver_dir(self.config) / "serve-config.json"
        config_path.write_bytes(orjson.dumps(dataclasses.asdict(self.config)))
        self._argv = [sys.executable, "-m", "unified_events.cli", "archive", "--config-json", str(config_path),
                      "--parent-pid", str(os.getpid())]
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = _MIN_BACKOFF_S
        while not self._stopping.is_set():
            started = loop.time()
            try:
                # stdout/stderr are inherited: the archiver's log lines land in the server's log.
                # Its own session: a terminal's Ctrl-C reaches the server only, which then stops
                # the archiver itself (instead of seeing it exit and restarting it mid-shutdown).
                self._proc = await asyncio.create_subprocess_exec(*self._argv, start_new_session=True)
            except OSError as exc:
                log.error("archiver: cannot start: %s", exc)
            else:
                log.info("archiver: started (pid %d)", self._proc.pid)
                code = await self._proc.wait()
                if self._stopping.is_set():
                    return
                log.warning("archiver: exited with code %s", code)
            if loop.time() - started >= _HEALTHY_AFTER_S:
                backoff = _MIN_BACKOFF_S
            self.restarts += 1
            log.warning("archiver: restarting in %.0f s (restart %d)", backoff, self.restarts)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def stop(self) -> None:
        """SIGTERM: the archiver finishes the commit in progress (buffered events stay in the log)."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=_STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("archiver: did not stop in %.0f s; killing it", _STOP_TIMEOUT_S)
                proc.kill()
                await proc.wait()
        if self._task is not None:
            await self._task


def start_archiver(config: Config) -> ArchiverSupervisor | None:
    """Start the supervised archiver unless `cold.enabled = false`."""
    if not config.cold.enabled:
        return None
    supervisor = ArchiverSupervisor(config)
    supervisor.start()
    return supervisor
