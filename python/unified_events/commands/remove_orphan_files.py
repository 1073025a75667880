"""`unified-events remove-orphan-files`: delete files no snapshot references any more."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..config import Config
from .compact import add_common_arguments, maintenance_command

NAME = "remove-orphan-files"


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(NAME, help="delete data files and manifests no snapshot references",
                            description="Deletes files under the table location that no snapshot references "
                                        "and that are older than --min-age-hours (younger ones may belong to "
                                        "a commit in progress).")
    add_common_arguments(p)
    p.add_argument("--min-age-hours", type=float, help="default cold.orphan_min_age_hours")
    p.add_argument("--dry-run", action="store_true", help="list the orphans, delete nothing")


def run(args: argparse.Namespace) -> int:
    from ..cold.maintenance import remove_orphan_files

    def work(config: Config, table: Any, progress: Callable[[str], None]) -> tuple[Any, str]:
        hours = config.cold.orphan_min_age_hours if args.min_age_hours is None else args.min_age_hours
        orphans = remove_orphan_files(table, hours, args.dry_run, progress)
        verb = "found" if args.dry_run else "deleted"
        return {"orphans": orphans, "deleted": not args.dry_run}, f"{verb} {len(orphans)} orphan files"

    return maintenance_command(args, False, work)
