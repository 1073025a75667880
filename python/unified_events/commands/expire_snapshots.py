"""`unified-events expire-snapshots`: drop old snapshots from the table's history."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..config import Config
from .compact import add_common_arguments, maintenance_command

NAME = "expire-snapshots"


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(NAME, help="expire old Iceberg snapshots (then remove-orphan-files frees the space)",
                            description="Expires snapshots older than --older-than-hours, keeping the newest "
                                        "--retain-last and the current one. Files are not deleted here: "
                                        "remove-orphan-files does that.")
    add_common_arguments(p)
    p.add_argument("--older-than-hours", type=float, help="default cold.snapshot_retention_hours")
    p.add_argument("--retain-last", type=int, default=3, help="always keep this many newest snapshots (default 3)")


def run(args: argparse.Namespace) -> int:
    from ..cold.maintenance import expire_snapshots

    def work(config: Config, table: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
        hours = config.cold.snapshot_retention_hours if args.older_than_hours is None else args.older_than_hours
        ids = expire_snapshots(table, hours, max(1, args.retain_last))
        return {"expired": ids, "remaining": len(table.snapshots())}, \
            f"expired {len(ids)} snapshots, {len(table.snapshots())} remain"

    return maintenance_command(args, False, work)
