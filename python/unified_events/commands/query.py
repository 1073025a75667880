"""`unified-events query "SELECT …"`: run SQL over a running server's hot tier and print the rows."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from typing import Any

import orjson

NAME = "query"
DEFAULT_URL = "http://127.0.0.1:8787"
MAX_CELL = 60


def add_parser(commands: argparse._SubParsersAction) -> None:
    query = commands.add_parser(
        NAME, help="run a SQL query over a running server's hot tier",
        description="POST the query to the server's /query endpoint and print the rows as a table "
                    "(or JSON with --json). Relations: events, traces, logs, metrics, sessions.",
    )
    query.add_argument("sql", help='the query, e.g. "SELECT * FROM events WHERE trace_id = $1"')
    query.add_argument("--param", action="append", default=[], metavar="V",
                       help="a positional parameter ($1, $2, ... in order); read as JSON when it parses "
                            "(500, true, null, \"500\"), else as a string")
    query.add_argument("--url", default=DEFAULT_URL, help=f"the server's HTTP address (default {DEFAULT_URL})")
    query.add_argument("--json", action="store_true", help="print the server's JSON answer")
    query.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer (default 30)")


def parse_param(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def run(args: argparse.Namespace) -> int:
    body = orjson.dumps({"sql": args.sql, "params": [parse_param(p) for p in args.param]})
    request = urllib.request.Request(args.url.rstrip("/") + "/query", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            message = orjson.loads(raw).get("error", raw.decode(errors="replace"))
        except (orjson.JSONDecodeError, AttributeError):
            message = raw.decode(errors="replace")
        print(f"unified-events: query failed ({err.code}): {message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as err:
        print(f"unified-events: cannot reach {args.url}: {getattr(err, 'reason', err)}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(raw.decode() + "\n")
        return 0
    result = orjson.loads(raw)
    print(format_table(result["columns"], result["rows"]))
    footer = f"({result['row_count']} row{'s' if result['row_count'] != 1 else ''}, {result['elapsed_ms']} ms)"
    if result.get("truncated"):
        footer += " truncated: the server's row cap was reached"
    print(footer)
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """An aligned text table; long cells are cut, NULL is spelled out."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "-+-".join("-" * w for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(columns, widths)), line]
    out.extend(" | ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells)
    return "\n".join(line.rstrip() for line in out)
