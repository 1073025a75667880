"""The files the archiver shares with the server: `position.json` and `status.json`.

Both live in `<data_dir>/archiver/` and are replaced by atomic rename, so a reader sees either the
old or the new content, never a torn file. `position.json` is the contract with the durable log:
segments whose records are all at or below `position` may be deleted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from ..config import Config


def archiver_dir(config: Config) -> Path:
    path = Path(config.data_dir).resolve() / "archiver"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json_atomic(path: Path, data: Any, fsync: bool = True) -> None:
    """Write, fsync (position.json: segments are deleted on its word) and rename over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(data))
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


class StatusReader:
    """The archiver's status for /metrics and /health, re-read at most once a second."""

    def __init__(self, data_dir: str) -> None:
        self.path = Path(data_dir).resolve() / "archiver" / "status.json"
        self._cached: tuple[float, dict[str, Any] | None] = (0.0, None)

    def read(self) -> dict[str, Any] | None:
        now = time.monotonic()
        if now - self._cached[0] >= 1.0:
            self._cached = (now, read_json(self.path))
        return self._cached[1]

    def summary(self, enabled: bool) -> dict[str, Any]:
        """The `archiver` object of /metrics and /health."""
        status = self.read()
        if not enabled:
            return {"enabled": False}
        if status is None:
            return {"enabled": True, "running": False, "position": None}
        age_s = time.time() - status.get("updated_at_ms", 0) / 1000
        keys = ("position", "read_position", "lag_events", "lag_seconds", "last_commit_at_ms", "rows_total",
                "commits_total", "dead_letters_total", "errors_total", "last_error", "last_error_at_ms")
        return {"enabled": True, "running": age_s < 30, "status_age_seconds": round(age_s, 1),
                **{k: status.get(k) for k in keys}}
