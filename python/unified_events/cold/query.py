"""`cold-query`: DuckDB over an Iceberg scan of `unified_events`.

The query is parsed first (sqlglot): exactly one SELECT, reading only `unified_events` (or `events`)
and its own CTEs. From the parse come the Iceberg scan's inputs, so the scan reads little:
- the columns the query names (all 175 only for `*`), and
- a row filter from the top-level AND terms of the WHERE clause of the form `column <op> literal`
  (=, <, <=, >, >=, IN). Iceberg prunes partitions (day(timestamp), event_type, ns) and files (column
  min/max) with it. `day = 'YYYY-MM-DD'` also becomes a timestamp range, so it prunes partitions.
DuckDB then runs the whole query over the scanned rows, so the filter only has to be implied by
the WHERE clause, never exact. DuckDB runs locked down (no file or network access).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from pyiceberg.expressions import (
    AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThan, GreaterThanOrEqual, In, LessThan, LessThanOrEqual,
)
from pyiceberg.expressions.visitors import bind
from sqlglot import exp

from ..config import Config
from .catalog import load_events_table, storage_errors, table_warehouse
from .schema import columns, iceberg_schema

TABLE_NAMES = ("unified_events", "events")


class ColdQueryError(ValueError):
    """The query is not allowed or not valid; the message says why."""


def plan(sql: str) -> tuple[exp.Expression, list[str], BooleanExpression]:
    """Validate `sql`; return its parse, the columns to scan and the Iceberg row filter."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise ColdQueryError(f"cannot parse the query: {exc}") from None
    if len(statements) != 1:
        raise ColdQueryError("exactly one statement is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise ColdQueryError("only SELECT queries are allowed")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
            raise ColdQueryError(f"table {table.sql()!r}: only {' or '.join(TABLE_NAMES)} can be queried")
        if name not in TABLE_NAMES and name not in ctes:
            raise ColdQueryError(f"unknown table {table.name!r}: query {' or '.join(TABLE_NAMES)}")
    return tree, _columns(tree), _row_filter(tree)


def _columns(tree: exp.Expression) -> list[str]:
    known = [c.name for c in columns()]
    if any(not isinstance(star.parent, exp.Count) for star in tree.find_all(exp.Star)):
        return known
    named = {col.name.lower() for col in tree.find_all(exp.Column)}
    chosen = [name for name in known if name in named]
    return chosen or ["event_type"]  # count(*) needs rows, not columns: scan the smallest useful one


def _row_filter(tree: exp.Expression) -> BooleanExpression:
    if not isinstance(tree, exp.Select) or tree.args.get("where") is None:
        return AlwaysTrue()
    terms: list[BooleanExpression] = []
    for cond in _conjuncts(tree.args["where"].this):
        for term in _predicates(cond):
            try:
                bind(iceberg_schema(), term, case_sensitive=False)
            except Exception:  # noqa: BLE001 - a term Iceberg cannot use is simply not pushed down
                continue
            terms.append(term)
    result: BooleanExpression = AlwaysTrue()
    for term in terms:
        result = term if isinstance(result, AlwaysTrue) else And(result, term)
    return result


def _conjuncts(cond: exp.Expression) -> list[exp.Expression]:
    if isinstance(cond, exp.Paren):
        return _conjuncts(cond.this)
    if isinstance(cond, exp.And):
        return _conjuncts(cond.left) + _conjuncts(cond.right)
    return [cond]


_OPS = {exp.EQ: EqualTo, exp.GT: GreaterThan, exp.GTE: GreaterThanOrEqual, exp.LT: LessThan,
        exp.LTE: LessThanOrEqual}
_FLIP = {exp.GT: LessThan, exp.GTE: LessThanOrEqual, exp.LT: GreaterThan, exp.LTE: GreaterThanOrEqual,
         exp.EQ: EqualTo}
_KINDS = {c.name: c.kind for c in columns()}


def _predicates(cond: exp.Expression) -> list[BooleanExpression]:
    if isinstance(cond, exp.In) and isinstance(cond.this, exp.Column) and cond.expressions:
        values = [_literal(cond.this.name, v) for v in cond.expressions]
        if all(v is not None for v in values):
            return [In(cond.this.name.lower(), values)]
        return []
    op = type(cond)
    if op not in _OPS:
        return []
    left, right = cond.left, cond.right
    if isinstance(left, exp.Column) and not isinstance(right, exp.Column):
        column, value, make = left.name.lower(), _literal(left.name, right), _OPS[op]
    elif isinstance(right, exp.Column) and not isinstance(left, exp.Column):
        column, value, make = right.name.lower(), _literal(right.name, left), _FLIP[op]
    else:
        return []
    if value is None or column not in _KINDS:
        return []
    result = [make(column, value)]
    if column == "day":  # the partition is day(timestamp): say it in timestamp terms too
        result.extend(_day_as_timestamp(make, value))
    return result


def _literal(column: str, node: exp.Expression) -> Any:
    kind = _KINDS.get(column.lower())
    if isinstance(node, exp.Cast):
        node = node.this
    if not isinstance(node, exp.Literal) or kind is None:
        return None
    text = node.this
    try:
        if kind in ("long", "int"):
            return int(text)
        if kind == "double":
            return float(text)
        if kind == "timestamptz(us)":
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()
        if kind == "date":
            return date.fromisoformat(text[:10]).isoformat()
        if kind == "boolean":
            return None
        return text if node.is_string else None
    except ValueError:
        return None


def _day_as_timestamp(make: Any, value: str) -> list[BooleanExpression]:
    start = datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    if make is EqualTo:
        return [GreaterThanOrEqual("timestamp", start.isoformat()), LessThan("timestamp", end.isoformat())]
    if make in (GreaterThanOrEqual,):
        return [GreaterThanOrEqual("timestamp", start.isoformat())]
    if make is GreaterThan:
        return [GreaterThanOrEqual("timestamp", end.isoformat())]
    if make is LessThan:
        return [LessThan("timestamp", start.isoformat())]
    if make is LessThanOrEqual:
        return [LessThan("timestamp", end.isoformat())]
    return []


def _connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:", config={
        "enable_external_access": False, "autoinstall_known_extensions": False,
        "autoload_known_extensions": False, "allow_community_extensions": False,
        "threads": 2, "lock_configuration": True,
    })


def cold_query(config: Config, sql: str) -> tuple[pa.Table, dict[str, Any]]:
    """Run `sql`; returns the result and what the scan did (columns, filter, files, rows)."""
    tree, selected, row_filter = plan(sql)
    table = load_events_table(config)
    with storage_errors(table_warehouse(table)):  # it reads manifests and data files
        scan = table.scan(row_filter=row_filter, selected_fields=tuple(selected), case_sensitive=False)
        files = sum(1 for _ in scan.plan_files())
        data = scan.to_arrow()
    con = _connection()
    try:
        for name in TABLE_NAMES:
            con.register(name, data)
        result = con.sql(tree.sql(dialect="duckdb")).to_arrow_table()
    except duckdb.Error as exc:
        raise ColdQueryError(f"query failed: {exc}") from None
    finally:
        con.close()
    return result, {"columns_scanned": len(selected), "filter": str(row_filter), "files_scanned": files,
                    "rows_scanned": data.num_rows}
