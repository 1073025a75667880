"""One module per `unified-events` subcommand.

Each module exposes `NAME`, `add_parser(subparsers)` (registers its argparse sub-parser) and
`run(args) -> int` (the exit code). `cli.py` wires them in the order listed here.
"""

from __future__ import annotations

COMMAND_MODULES = (
    "serve",
    "token",
    "bench",
    "query",
    "archive",
    "cold_query",
    "compact",
    "expire_snapshots",
    "remove_orphan_files",
    "apply_retention",
)
