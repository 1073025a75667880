"""`unified-events compact`: rewrite the small files of each partition into large ones.

Also home of `maintenance_command`, which the other maintenance commands (expire-snapshots,
remove-orphan-files, apply-retention) share: config, table, lock, readable or --json output.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import orjson

from ..config import Config
from ..errors import ConfigError
from .archive import config_from_args
from .serve import add_config_arguments

NAME = "compact"


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--data-dir", help="data directory [UE_DATA_DIR] (default ./data)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(NAME, help="compact the Iceberg table: many small files per partition -> one",
                            description="Rewrites each partition (day, event_type, ns) holding at least "
                                        "--min-files data files into one file; rows are unchanged. Needs the "
                                        "archiver lock: stop the archiver first (the archiver compacts on its "
                                        "own schedule, cold.maintenance_interval_s).")
    add_common_arguments(p)
    p.add_argument("--min-files", type=int, help="compact partitions with at least this many files "
                                                 "(default cold.compact_min_files)")


def maintenance_command(args: argparse.Namespace, needs_lock: bool,
                        work: Callable[[Config, Any, Callable[[str], None]], tuple[Any, str]]) -> int:
    """Run `work(config, table, progress)`, which returns (JSON-able result, readable summary)."""
    from ..cold.archiver import ArchiverLock
    from ..cold.catalog import ColdTierError, load_events_table, storage_errors, table_warehouse

    try:
        config = config_from_args(args)
        table = load_events_table(config)
    except (ConfigError, ColdTierError) as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    lock = ArchiverLock(config)
    if needs_lock and not lock.acquire(wait=False):
        print(f"unified-events: the archiver (pid {lock.holder()}) is running on {config.data_dir}; it runs "
              f"this on its schedule (cold.maintenance_interval_s). Stop it to run this now.", file=sys.stderr)
        return 1

    def progress(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    started = time.perf_counter()
    try:
        with storage_errors(table_warehouse(table)):
            result, summary = work(config, table, progress)
    except ColdTierError as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 1
    finally:
        if needs_lock:
            lock.release()
    seconds = round(time.perf_counter() - started, 3)
    if args.json:
        print(orjson.dumps({"result": result, "seconds": seconds}, default=str).decode())
    else:
        print(f"{summary} ({seconds} s)")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..cold.maintenance import compact

    def work(config: Config, table: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
        done = compact(table, args.min_files or config.cold.compact_min_files, progress)
        files = sum(p["files_before"] for p in done)
        return done, f"compacted {len(done)} partitions ({files} files -> {len(done)})"

    return maintenance_command(args, True, work)
