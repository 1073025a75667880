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
# The same relations over the index rows only (engine.py registers them).
INDEXED_RELATIONS = {name: f"_{name}_indexed" for name in EVENT_RELATIONS}


# (indexed column, the literal or `$n` it must equal), one per usable conjunct, in WHERE order.
Equalities = tuple[tuple[str, exp.Expression], ...]


def index_equalities(tree: exp.Expression) -> Equalities:
    """The indexed equalities every answer row of `tree` satisfies, before parameters are known
    (found once per query text: the walk costs ~50 µs of the event loop)."""
    if not isinstance(tree, exp.Select) or tree.args.get("with_") or tree.args.get("joins"):
        return ()
    tables = list(tree.find_all(exp.Table))
    if len(tables) != 1 or any(True for _ in tree.find_all(exp.Subquery, exp.Lateral, exp.Unnest)):
        return ()
    if len(list(tree.find_all(exp.Select))) != 1:
        return ()
    table = tables[0]
    if table.name.lower() not in EVENT_RELATIONS or table.db:
        return ()
    where = tree.args.get("where")
    if where is None:
        return ()
    qualifiers = {"", table.name.lower(), table.alias_or_name.lower()}
    conjuncts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    return tuple(found for c in conjuncts if (found := _equality(c.unnest(), qualifiers)) is not None)


def indexed_text(tree: exp.Expression) -> str:
    """The query text for a pushdown: `tree` reading the relation's `_indexed` twin under the
    name it had (so column references and DuckDB's messages are unchanged). Only for a tree
    `index_equalities` found equalities in: it reads exactly one event relation."""
    copy = tree.copy()
    table = next(copy.find_all(exp.Table))
    name = table.name.lower()
    table.set("this", exp.to_identifier(INDEXED_RELATIONS[name]))
    if not table.alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
    return copy.sql(dialect="duckdb")


def index_filter(equalities: Equalities, params: list[Any]) -> tuple[str, str] | None:
    """(column, value) of the first equality whose value is a string with these parameters, or None."""
    for column, node in equalities:
        value = _string_value(node, params)
        if value is not None:
            return column, value
    return None


def _equality(node: exp.Expression, qualifiers: set[str]) -> tuple[str, exp.Expression] | None:
    if not isinstance(node, exp.EQ):
        return None
    for column, other in ((node.this, node.expression), (node.expression, node.this)):
        if not isinstance(column, exp.Column) or column.name.lower() not in INDEXED:
            continue
        if column.table.lower() not in qualifiers:
            continue
        if (isinstance(other, exp.Literal) and other.is_string) or isinstance(other, (exp.Placeholder, exp.Parameter)):
            return column.name.lower(), other
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
