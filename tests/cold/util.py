"""Helpers for cold-tier tests: NDJSON event files, `unified-events archive` processes, table reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from tests.conftest import write_config
from unified_events.cold.catalog import open_catalog
from unified_events.cold.schema import DEAD_LETTER_TABLE_NAME, TABLE_NAME
from unified_events.config import load_config


def cold_settings(tmp: Path, **cold: Any) -> dict[str, Any]:
    """A config for a test: its own data dir, small batches, fast polling."""
    base = {"flush_interval_s": 0.3, "poll_interval_ms": 50, "batch_rows": 2000, "maintenance_interval_s": 0}
    return {"data_dir": str(tmp / "data"), "cold": {**base, **cold}}


def config_file(tmp: Path, settings: dict[str, Any], name: str = "cold.toml") -> Path:
    path = tmp / name
    write_config(path, settings)
    return path


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("UE_") and k != "ENVIRONMENT"}


def cli(config: Path, *args: str, timeout: float = 60, check: bool = True,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`extra_env`: variables on top of `env()`, which passes on no UE_* variable (the S3 warehouse
    tests need UE_S3_ENDPOINT and friends)."""
    proc = subprocess.run([sys.executable, "-m", "unified_events.cli", args[0], "--config", str(config), *args[1:]],
                          capture_output=True, text=True, env={**env(), **(extra_env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def spawn_archiver(config: Path, source: Path, log_path: Path,
                   extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", "unified_events.cli", "archive", "--config", str(config),
                             "--source", f"ndjson:{source}"], stdout=log, stderr=log,
                            env={**env(), **(extra_env or {})})


def append_events(path: Path, bodies: list[Any]) -> None:
    with path.open("a") as fh:
        for body in bodies:
            fh.write((body if isinstance(body, str) else json.dumps(body)) + "\n")


def unified(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"ev-{i}", "event_type": "trace", "event_name": "http.request", "ns": f"tenant-{i % 3}", **extra}


def read_table(settings: dict[str, Any], name: str = TABLE_NAME) -> pa.Table:
    config = load_config(None, overrides=settings)
    catalog = open_catalog(config)
    return catalog.load_table((config.cold.namespace, name)).scan().to_arrow()


def read_dead(settings: dict[str, Any]) -> pa.Table:
    return read_table(settings, DEAD_LETTER_TABLE_NAME)

