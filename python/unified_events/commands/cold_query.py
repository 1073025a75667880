"""`unified-events cold-query "SELECT …"`: SQL over the Iceberg table (DuckDB over an Iceberg scan)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..errors import ConfigError
from .archive import config_from_args
from .serve import add_config_arguments

NAME = "cold-query"


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        NAME, help="run a SELECT over the Iceberg cold tier (table unified_events or events)",
        description="Runs one SELECT with DuckDB over an Iceberg scan of unified_events. Simple WHERE terms "
                    "(column = / < / > / IN literal) prune partitions and files; columns not named are not read.",
    )
    add_config_arguments(p)
    p.add_argument("--data-dir", help="data directory [UE_DATA_DIR] (default ./data)")
    p.add_argument("sql", help="the query, e.g. \"SELECT event_type, count(*) FROM events GROUP BY 1\"")
    p.add_argument("--json", action="store_true", help="print rows as a JSON array of objects")
    p.add_argument("--explain", action="store_true", help="also print what the Iceberg scan read (to stderr)")


def run(args: argparse.Namespace) -> int:
    from ..cold.catalog import ColdTierError
    from ..cold.query import ColdQueryError, cold_query

    try:
        config = config_from_args(args)
        result, scan = cold_query(config, args.sql)
    except (ConfigError, ColdQueryError, ColdTierError) as exc:
        print(f"unified-events: {exc}", file=sys.stderr)
        return 2
    rows = result.to_pylist()
    if args.explain:
        print(f"scan: {scan['files_scanned']} files, {scan['rows_scanned']} rows, {scan['columns_scanned']} "
              f"columns, filter {scan['filter']}", file=sys.stderr)
    if args.json:
        print(orjson.dumps(rows, default=str).decode())
    else:
        print(format_table(result.column_names, rows))
    return 0


def format_table(names: list[str], rows: list[dict[str, Any]], max_width: int = 60) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(row[n]) for n in names] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = [" | ".join(n.ljust(w) for n, w in zip(names, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
