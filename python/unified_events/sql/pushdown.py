"""Index pushdown: answer `… WHERE trace_id = 'x'` from the rows the hot tier's index names.

The Rust ring keeps equality indexes on a few id columns. When a query reads exactly one
relation whose rows are events (no join, subquery or CTE) and its WHERE clause is a conjunction
holding `<indexed column> = <string>`, no row failing that conjunct can reach the answer
(WHERE runs before grouping, windows and ordering), so the snapshot can hold just the matching
rows: a few slices instead of a scan of every row. Anything else scans the full snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

# Selective indexed columns. event_type/ns/topic are indexed too, but usually match a large share.
INDEXED = ("trace_id", "session_id", "correlation_id", "id")
# Relations that are row-for-row filters of the events (not `sessions`, whose `id` is a session id).
EVENT_RELATIONS = ("events", "traces", "logs", "metrics")


def index_filter(tree: exp.Expression, params: list[Any]) -> tuple[str, str] | None:
    """(column, value) of an indexed equality every answer row satisfies, or None."""
    if not isinstance(tree, exp.Select) or tree.args.get("with_") or tree.args.get("joins"):
        return None
    tables = list(tree.find_all(exp.Table))
    if len(tables) != 1 or any(True for _ in tree.find_all(exp.Subquery, exp.Lateral, exp.Unnest)):
        return None
    if len(list(tree.find_all(exp.Select))) != 1:
        return None
    table = tables[0]
    if table.name.lower() not in EVENT_RELATIONS or table.db:
        return None
    where = tree.args.get("where")
    if where is None:
        return None
    qualifiers = {"", table.name.lower(), table.alias_or_name.lower()}
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        found = _equality(conjunct.unnest(), qualifiers, params)
        if found is not None:
            return found
    return None


def _equality(node: exp.Expression, qualifiers: set[str], params: list[Any]) -> tuple[str, str] | None:
    if not isinstance(node, exp.EQ):
        return None
    for column, other in ((node.this, node.expression), (node.expression, node.this)):
        if not isinstance(column, exp.Column) or column.name.lower() not in INDEXED:
            continue
        if column.table.lower() not in qualifiers:
            continue
        value = _string_value(other, params)
        if value is not None:
            return column.name.lower(), value
    return None


def _string_value(node: exp.Expression, params: list[Any]) -> str | None:
    """A string literal, or a `$n` parameter bound to a string (other types compare by cast)."""
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        index = str(node.this.name if isinstance(node.this, exp.Expression) else node.this)
        if index.isdigit() and 1 <= int(index) <= len(params) and isinstance(params[int(index) - 1], str):
            return str(params[int(index) - 1])
    return None
