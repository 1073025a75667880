"""Samples the server under test: its `/metrics` JSON (CPU seconds, RSS, drops) when it has an
HTTP endpoint, else `/proc/<pid>` when the harness knows the server's pid (the baseline)."""

from __future__ import annotations

import time
from typing import Any

from .httpc import HttpClient
from .procstat import proc_cpu_seconds, proc_rss_bytes


class ServerProbe:
    def __init__(self, http_url: str | None, pid: int | None) -> None:
        self.client = HttpClient(http_url, timeout_s=5) if http_url else None
        self.pid = pid
        self.errors = 0
        self.last_error = ""

    @property
    def available(self) -> bool:
        return self.client is not None or self.pid is not None

    async def sample(self) -> dict[str, Any] | None:
        """{t, cpu_seconds, rss_bytes, [metrics fields]} or None when nothing answers."""
        now = time.monotonic()
        if self.client is not None:
            try:
                metrics: Any = await self.client.json("GET", "/metrics")
                process = metrics.get("process") or {}
                return {"t": now, "cpu_seconds": process.get("cpu_seconds"), "rss_bytes": process.get("rss_bytes"),
                        "dropped": metrics.get("dropped") or {}, "deliveries": metrics.get("deliveries"),
                        "active_connections": metrics.get("activeConnections"),
                        "slow_consumer_closes": metrics.get("slowConsumerCloses"),
                        "backpressure_notices": metrics.get("backpressureNotices")}
            except Exception as exc:  # down (restarting) or not our server: reported, not fatal
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.pid is None:
                    return None
        if self.pid is not None:
            cpu, rss = proc_cpu_seconds(self.pid), proc_rss_bytes(self.pid)
            if cpu is None:
                return None
            return {"t": now, "cpu_seconds": cpu, "rss_bytes": rss}
        return None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
