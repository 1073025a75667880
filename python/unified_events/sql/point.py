"""Point lookups: `SELECT <columns> FROM events WHERE trace_id = $1 [LIMIT n]` answered without DuckDB.

"Every event of this trace" is the query people run most while debugging. Through the index
(pushdown.py) it reads a handful of rows, and DuckDB's fixed cost per query (binding the 39
Arrow columns, planning, `to_json`) is then nearly all of its time: ~4 ms of ~5. For the plain
shape below, the rows the index names are written as JSON in Rust instead
(`ArrowSnapshot.json_rows`, rust/query/json_rows.rs), with the same columns, keys and values
DuckDB would give. Anything outside the shape (another condition, ORDER BY, an expression, a
JSON operator, ...) runs on DuckDB as before.

The shape: one SELECT of `*` or of plain columns (each optionally `AS` a name), from one of the
relations whose rows are events (`events`, `traces`, `logs`, `metrics`), whose whole WHERE
clause is `<indexed column> = <string or $n bound to a string>`, with an optional
`LIMIT <integer>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .pushdown import EVENT_RELATIONS

# The `event_type` of each view's rows (engine._VIEWS); `events` has every row.
_VIEW_EVENT_TYPES = {"events": None, "traces": "trace", "logs": "log", "metrics": "metric"}
# SELECT clauses a point lookup may have; any other (ORDER BY, GROUP BY, DISTINCT, ...) goes to DuckDB.
_ALLOWED_CLAUSES = {"expressions", "from", "from_", "where", "limit"}


@dataclass(frozen=True, slots=True)
class PointLookup:
    """What a point-shaped query selects. The indexed equality itself is found per run
    (pushdown.index_filter), because its value may be a parameter."""

    # (column as written, output key or None for the column's own name); None means `*`.
    selected: tuple[tuple[str, str | None], ...] | None
    event_type: str | None
    limit: int | None

    def columns(self, column_names: list[str]) -> list[tuple[str, str]] | None:
        """(column, output key) pairs against the relation's columns, or None when a name is not
        one of them (DuckDB then reports the error) or two outputs share a key."""
        if self.selected is None:
            return [(name, name) for name in column_names]
        by_lower = {name.lower(): name for name in column_names}
        pairs = []
        for written, alias in self.selected:
            name = by_lower.get(written.lower())
            if name is None:
                return None
            pairs.append((name, alias if alias is not None else name))
        if len({key.lower() for _, key in pairs}) != len(pairs):
            return None
        return pairs


def point_lookup(tree: exp.Expression) -> PointLookup | None:
    """The point lookup `tree` is, or None when it has any other shape."""
    if not isinstance(tree, exp.Select):
        return None
    if any(value for key, value in tree.args.items() if key not in _ALLOWED_CLAUSES):
        return None
    source = tree.args.get("from_") or tree.args.get("from")
    table = source.this if isinstance(source, exp.From) else None
    if not isinstance(table, exp.Table) or table.name.lower() not in EVENT_RELATIONS:
        return None
    if table.db or table.catalog or any(v for k, v in table.args.items() if k not in ("this", "alias")):
        return None
    alias = table.args.get("alias")
    if alias is not None and alias.columns:
        return None
    where = tree.args.get("where")
    if where is None or not isinstance(where.this, exp.EQ):
        return None
    qualifiers = {"", table.name.lower(), table.alias_or_name.lower()}
    selected = _selected(tree.expressions, qualifiers)
    limit = _limit(tree.args.get("limit"))
    if selected is False or limit is False:
        return None
    return PointLookup(selected, _VIEW_EVENT_TYPES[table.name.lower()], limit)


def _selected(expressions: list[exp.Expression],
              qualifiers: set[str]) -> tuple[tuple[str, str | None], ...] | None | bool:
    """The selected columns; None for `*`; False for anything else."""
    if len(expressions) == 1 and _is_star(expressions[0], qualifiers):
        return None
    selected = []
    for node in expressions:
        alias = None
        if isinstance(node, exp.Alias):
            alias, node = node.alias, node.this
        if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
            return False
        if node.table.lower() not in qualifiers or node.args.get("db") or node.args.get("catalog"):
            return False
        selected.append((node.name, alias))
    return tuple(selected)


def _is_star(node: exp.Expression, qualifiers: set[str]) -> bool:
    if isinstance(node, exp.Star):
        return not any(node.args.values())  # no EXCLUDE / REPLACE / RENAME
    return (isinstance(node, exp.Column) and isinstance(node.this, exp.Star) and not any(node.this.args.values())
            and node.table.lower() in qualifiers)


def _limit(node: exp.Expression | None) -> int | None | bool:
    """The LIMIT's row count; None without one; False for anything but a non-negative integer."""
    if node is None:
        return None
    if not isinstance(node, exp.Limit) or any(v for k, v in node.args.items() if k != "expression"):
        return False
    count = node.expression
    if isinstance(count, exp.Literal) and not count.is_string and count.this.isdigit():
        return int(count.this)
    return False
