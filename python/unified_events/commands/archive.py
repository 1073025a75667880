"""`unified-events archive`: move events from the durable log into the Iceberg table, exactly once.

`serve` starts and supervises this command itself (unless `cold.enabled = false`); run it by hand
to archive without a server, or with `--once` to drain what is there and exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

import orjson

from ..config import Config, load_config, resolve_config
from ..errors import ConfigError
from .serve import add_config_arguments

NAME = "archive"


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        NAME, help="archive the durable log into the Iceberg cold tier (serve runs this itself)",
        description="Read the durable log and append it to the Iceberg table `unified_events` in batches, "
                    "exactly once; resumes after the log position stored in the table's last snapshot.",
    )
    add_config_arguments(p)
    p.add_argument("--data-dir", help="data directory [UE_DATA_DIR] (default ./data)")
    p.add_argument("--once", action="store_true", help="archive what the log holds now, then exit")
    p.add_argument("--source", help="read events from `ndjson:PATH` (one event body per line; position = "
                                    "line number) instead of the durable log: imports, tests and benchmarks. The table "
                                    "stores one position, so give such a source its own data dir or cold.namespace")
    p.add_argument("--no-maintenance", action="store_true", help="do not run scheduled maintenance")
    p.add_argument("--json", action="store_true", help="with --once: print the final status as JSON")
    # Used by `serve` when it supervises the archiver: the exact configuration it runs with, and
    # its pid (the archiver exits when that process is gone).
    p.add_argument("--config-json", help=argparse.SUPPRESS)
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)


def config_from_args(args: argparse.Namespace) -> Config:
    if getattr(args, "config_json", None):
        raw = orjson.loads(Path(args.config_json).read_bytes())
        return load_config(None, environment=raw.pop("environment"), overrides=raw)
    return resolve_config(args.config, args.env, {"data_dir": getattr(args, "data_dir", None)})


def make_source(config: Config, spec: str | None):  # -> LogSource
    from ..cold.source import DurableLogSource, NdjsonSource

    if spec:
        kind, _, path = spec.partition(":")
        if kind != "ndjson" or not path:
            raise ConfigError("--source", spec, "ndjson:PATH")
        return NdjsonSource(path)
    try:
        return DurableLogSource(Path(config.data_dir) / "log")
    except (ImportError, AttributeError) as exc:
        raise ConfigError("archive source", "durable log",
                          f"a build with the durable log (_core.LogReader); this one has none ({exc})") from None


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # Before any thread starts (threads inherit it): on a machine it shares with the server, the
    # archiver's conversion threads would otherwise take the CPU acknowledgements need; it catches
    # up when publishing pauses (the log holds the events meanwhile).
    if config.cold.nice:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + config.cold.nice))
    from ..cold.archiver import Archiver, ArchiverLock
    from ..cold.catalog import ColdTierError, open_tables

    log = logging.getLogger("unified_events.archiver")
    try:
        source = make_source(config, args.source)
    except ConfigError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    lock = ArchiverLock(config)
    lock.acquire(on_wait=lambda pid: log.warning("archiver: waiting for the archiver already running (pid %s)", pid))
    try:
        events, dead = open_tables(config)
    except ColdTierError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 1
    archiver = Archiver(config, source, events, dead)

    def stop(signum: int, _frame: object) -> None:
        archiver.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if config.cold.maintenance_interval_s and not args.no_maintenance and not args.once:
        from ..cold.maintenance import MaintenanceSchedule

        archiver.on_idle = MaintenanceSchedule(config, events, archiver).run_if_due
    parent = args.parent_pid

    def keep_running() -> bool:
        # Supervised by `serve`: when the server dies (even by SIGKILL) we are re-parented; stop too.
        return parent is None or os.getppid() == parent

    started = time.perf_counter()
    try:
        archiver.run(exit_when_caught_up=args.once, keep_running=keep_running)
    finally:
        lock.release()
    if args.once:
        s = archiver.stats
        summary = {"position": s.position, "rows": s.rows_total, "commits": s.commits_total,
                   "dead_letters": s.dead_letters_total, "errors": s.errors_total,
                   "seconds": round(time.perf_counter() - started, 3)}
        if args.json:
            print(orjson.dumps(summary).decode())
        else:
            print(f"archived {s.rows_total} events in {s.commits_total} commits "
                  f"({s.dead_letters_total} dead-lettered), log position {s.position}, "
                  f"{summary['seconds']} s")
    return 0
