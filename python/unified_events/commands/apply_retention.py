"""`unified-events apply-retention`: delete cold data older than `cold.retention_days`."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..config import Config
from .compact import add_common_arguments, maintenance_command

NAME = "apply-retention"


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(NAME, help="delete Iceberg data older than cold.retention_days",
                            description="Deletes events whose timestamp is before the start of the UTC day "
                                        "--days ago (whole day partitions). Needs the archiver lock.")
    add_common_arguments(p)
    p.add_argument("--days", type=int, help="default cold.retention_days (0 there means keep everything)")


def run(args: argparse.Namespace) -> int:
    from ..cold.maintenance import apply_retention

    def work(config: Config, table: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
        days = config.cold.retention_days if args.days is None else args.days
        if days <= 0:
            return {"rows_deleted": 0}, "retention is off (cold.retention_days = 0): nothing deleted"
        result = apply_retention(table, days)
        return result, f"deleted {result['rows_deleted']} events before {result['cutoff']}, {result['rows_left']} left"

    return maintenance_command(args, True, work)
