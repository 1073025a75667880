"""SQL validation by parsing (sqlglot, DuckDB dialect): read-only queries over the hot relations.

The original validated with regexes (original-system.md §5.4) and so also refused valid reads
(`'order.update'` in a string, a column `db_system`, `EXTRACT(epoch FROM …)`). Here every check
looks at tokens or the syntax tree, so strings and identifiers are never mistaken for keywords.
Messages are the original's where the case is the same. The query that runs is the one
regenerated from the checked tree, so DuckDB never sees text the checks did not.

This is the first fence; the DuckDB connection is locked down as well (engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from ..errors import EventValidationError
from .point import PointLookup, point_lookup
from .pushdown import Equalities, index_equalities, indexed_text

DIALECT = "duckdb"
MAX_SQL_LENGTH = 10_240
MAX_SELECT_DEPTH = 4  # the outer query and three levels of subqueries
MAX_JOINS = 5
RELATIONS = ("events", "sessions", "metrics", "traces", "logs")
_TABLES_MESSAGE = f"Allowed tables: {', '.join(RELATIONS)}"

# Statements the original names in its message when the text starts with them.
_WRITE_KEYWORDS = frozenset((
    "UPDATE", "DELETE", "DROP", "INSERT", "ALTER", "TRUNCATE", "CREATE", "EXEC", "EXECUTE", "GRANT", "REVOKE",
    "MERGE", "REPLACE", "UPSERT", "COPY", "ATTACH", "DETACH", "INSTALL", "LOAD", "SET", "RESET", "PRAGMA",
    "CALL", "CHECKPOINT", "VACUUM", "EXPORT", "IMPORT", "USE",
))
_SYSTEM_NAMES = frozenset((
    "sqlite_master", "sqlite_schema", "sqlite_temp_master", "pg_catalog", "pg_tables", "pg_class",
    "pg_namespace", "information_schema", "sys", "sysobjects", "syscolumns", "system", "temp", "main",
))

# Functions sqlglot knows by a class of their own are standard SQL or DuckDB scalars and
# aggregates; these few touch files or the session and are refused anyway.
_DENIED_FUNCTIONS: tuple[type[exp.Expression], ...] = (exp.ReadCSV, exp.ReadParquet)
# Functions sqlglot does not model (they parse as `Anonymous`) must be in this list.
ALLOWED_OTHER_FUNCTIONS = frozenset((
    # time
    "now", "today", "current_timestamp", "epoch", "epoch_ms", "epoch_us", "epoch_ns", "make_timestamp",
    "make_date", "make_time", "to_timestamp", "strftime", "strptime", "date_part", "datepart", "date_diff",
    "datediff", "date_sub", "date_add", "time_bucket", "age", "dayname", "monthname", "last_day", "to_seconds",
    "to_milliseconds", "to_minutes", "to_hours", "to_days", "millisecond", "microsecond", "isodow", "yearweek",
    # JSON
    "json_extract", "json_extract_string", "json_extract_path", "json_extract_path_text", "json_value",
    "json_exists", "json_keys", "json_type", "json_valid", "json_array_length", "json_contains", "json_structure",
    "json_transform", "json_object", "json_array", "json_group_array", "json_group_object", "json_merge_patch",
    "json_serialize_sql", "to_json", "json",
    # text
    "regexp_extract", "regexp_extract_all", "regexp_full_match", "regexp_split_to_array", "string_split",
    "str_split", "split_part", "starts_with", "ends_with", "suffix", "prefix", "contains", "instr", "strpos",
    "position", "lpad", "rpad", "ltrim", "rtrim", "repeat", "reverse", "replace", "translate", "left", "right",
    "ascii", "unicode", "md5", "sha256", "hash", "format", "printf", "concat_ws", "array_to_string", "list_aggr",
    "levenshtein", "jaccard", "damerau_levenshtein", "hamming", "jaro_winkler_similarity", "like_escape",
    "ilike_escape", "lcase", "ucase", "nfc_normalize", "strip_accents", "length_grapheme", "bit_length",
    # numbers and aggregates
    "quantile", "quantile_cont", "quantile_disc", "median", "mode", "approx_count_distinct", "reservoir_quantile",
    "arg_min", "arg_max", "min_by", "max_by", "histogram", "list", "first", "last", "any_value", "fsum",
    "favg", "bit_and", "bit_or", "bool_and", "bool_or", "product", "entropy", "kurtosis", "skewness",
    "regr_slope", "regr_intercept", "corr", "covar_pop", "covar_samp", "stddev", "stddev_pop", "stddev_samp",
    "var_pop", "var_samp", "variance", "string_agg", "group_concat", "listagg", "count_star", "sum_no_overflow",
    "even", "gamma", "lgamma", "factorial", "isnan", "isinf", "isfinite", "signbit", "bit_count", "xor",
    "greatest", "least", "round_even", "trunc", "cbrt", "log2", "log10", "ln", "pi", "random", "setseed",
    "nextafter", "gcd", "lcm", "width_bucket",
    # lists, structs, conditionals, types
    "list_value", "list_extract", "list_element", "list_contains", "list_has", "list_position", "list_sort",
    "list_distinct", "list_unique", "list_slice", "list_reverse", "list_concat", "list_filter", "list_transform",
    "array_length", "len", "unnest", "generate_series", "struct_extract", "struct_pack", "row", "map",
    "element_at", "cardinality", "ifnull", "nullif", "coalesce", "typeof", "try_cast", "alias",
))


def _bad(message: str) -> EventValidationError:
    return EventValidationError(message)


@dataclass(frozen=True, slots=True)
class Checked:
    """A query that passed the checks: its tree (shared, never modify it), the text to run, and
    (cached here with them, so the event loop does not walk the tree again) the indexed
    equalities it holds (pushdown.py) and the point lookup it is, if any (point.py)."""

    tree: exp.Query
    text: str
    index_equalities: Equalities
    indexed_text: str | None  # the text to run on the index rows (pushdown.indexed_text)
    point: PointLookup | None


def validate(sql: Any) -> str:
    """The SQL to run for `sql`, or EventValidationError (HTTP 400) naming the problem."""
    return checked(sql).text


def checked(sql: Any) -> Checked:
    """`check` and the regenerated text, cached by query text: parsing costs milliseconds of the
    event loop, and dashboards and live queries send the same text again and again (parameters
    are separate, so one text serves every value). Rejections are not cached, nor texts over
    `_CACHED_SQL_LENGTH`: a checked tree takes ~170 bytes per character of text (tracemalloc), so
    the cache holds at most ~22 MB (128 x 1 KB x 170), typically far less."""
    if not isinstance(sql, str) or len(sql) > _CACHED_SQL_LENGTH:
        return _check_to_run(sql)
    return _cached_check_to_run(sql)


_CACHED_SQL_LENGTH = 1024


def _check_to_run(sql: Any) -> Checked:
    tree = check(sql)
    equalities = index_equalities(tree)
    return Checked(tree, tree.sql(dialect=DIALECT), equalities, indexed_text(tree) if equalities else None,
                   point_lookup(tree))


_cached_check_to_run = lru_cache(maxsize=128)(_check_to_run)


def check(sql: Any) -> exp.Query:
    """The checked (and lightly rewritten) syntax tree of `sql`; raises like `validate`."""
    if sql is None:
        raise _bad("SQL query is required")
    if not isinstance(sql, str):
        raise _bad("SQL query must be a string")
    if not sql.strip():
        raise _bad("SQL query cannot be empty")
    if len(sql) > MAX_SQL_LENGTH:
        raise _bad("SQL query exceeds maximum length limit (10KB)")
    tokens = _tokens(sql)
    _check_tokens(tokens)
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except (ParseError, TokenError) as exc:
        raise _bad(f"SQL syntax error: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise _bad("Multiple SQL statements are not allowed" if statements else "SQL query cannot be empty")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise _bad("Only SELECT statements are allowed")
    _check_tree(tree)
    _name_bare_counts(tree)
    _lenient_numeric_aggregates(tree)
    return tree


def _tokens(sql: str) -> list[Token]:
    try:
        return list(sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql))
    except TokenError as exc:
        raise _bad(f"SQL syntax error: {_first_line(exc)}") from None


def _check_tokens(tokens: list[Token]) -> None:
    """Checks on the token stream, before parsing: comments, statement count, the first keyword, hex."""
    # A comment-only text has no tokens at all; any other comment is attached to a token.
    if not tokens or any(t.comments for t in tokens):
        raise _bad("SQL comments are not allowed")
    semicolons = [i for i, t in enumerate(tokens) if t.token_type == TokenType.SEMICOLON]
    if semicolons and (len(semicolons) > 1 or semicolons[0] != len(tokens) - 1):
        raise _bad("Multiple SQL statements are not allowed")
    first = tokens[0].text.upper()
    if first in _WRITE_KEYWORDS:
        raise _bad(f"{first} statements are not allowed")
    if first not in ("SELECT", "WITH", "FROM", "(", "VALUES"):
        raise _bad("Only SELECT statements are allowed")
    for prev, tok in zip(tokens, tokens[1:]):
        adjacent = tok.start == prev.end + 1
        # DuckDB reads `0x1F` as a hex number and `X'1F'` as a blob; sqlglot sees `0 AS x1F`.
        hex_number = prev.token_type == TokenType.NUMBER and prev.text == "0" and tok.text[:1] in "xX"
        blob = prev.text in ("x", "X") and tok.token_type in (TokenType.STRING, TokenType.HEX_STRING)
        if adjacent and (hex_number or blob) or tok.token_type in (TokenType.HEX_STRING, TokenType.BIT_STRING):
            raise _bad("Hex-encoded values are not allowed")


def _check_tree(tree: exp.Expression) -> None:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    joins = 0
    for node in tree.walk():
        if isinstance(node, exp.Table):
            _check_table(node, ctes)
        elif isinstance(node, exp.Select):
            if node.args.get("into") is not None:
                raise _bad("SELECT INTO is not allowed")
            if _select_depth(node) > MAX_SELECT_DEPTH:
                raise _bad(f"Query has too many nested subqueries (max depth: {MAX_SELECT_DEPTH - 1})")
        elif isinstance(node, exp.Join):
            joins += 1
        elif isinstance(node, exp.Or) and _is_tautology(node):
            raise _bad("Tautology patterns are not allowed (potential SQL injection)")
        elif isinstance(node, exp.Func):
            _check_function(node)
    if joins > MAX_JOINS:
        raise _bad(f"Query has too many JOINs (max: {MAX_JOINS})")


def _check_table(table: exp.Table, ctes: set[str]) -> None:
    target = table.this
    if isinstance(target, exp.Func):
        raise _bad(f"Table functions are not allowed ({_function_name(target)})")
    if not isinstance(target, exp.Identifier):
        raise _bad("Only the hot-tier tables can be queried. " + _TABLES_MESSAGE)
    name = target.name
    parts = [p.lower() for p in (table.catalog, table.db, name) if p]
    system = next((p for p in parts if p in _SYSTEM_NAMES or p.startswith(("duckdb_", "pragma_"))), None)
    if system is not None:
        raise _bad(f"Access to system table '{system}' is not allowed")
    if target.quoted and any(c in name for c in "/\\:*"):
        raise _bad(f"File paths are not allowed ('{name}')")
    if len(parts) > 1 or parts[0] not in RELATIONS and parts[0] not in ctes:
        raise _bad(f"Table '{'.'.join(parts)}' is not allowed. {_TABLES_MESSAGE}")


def _check_function(func: exp.Func) -> None:
    if isinstance(func, exp.Chr):
        raise _bad("CHAR() function is not allowed")
    if isinstance(func, _DENIED_FUNCTIONS):
        raise _bad(f"Function '{_function_name(func)}' is not allowed")
    if isinstance(func, exp.Anonymous) and func.name.lower() not in ALLOWED_OTHER_FUNCTIONS:
        raise _bad(f"Function '{func.name}' is not allowed")


def _function_name(func: exp.Expression) -> str:
    return func.name.lower() if isinstance(func, exp.Anonymous) else func.sql_name().lower()


def _select_depth(select: exp.Select) -> int:
    depth, node = 1, select.parent
    while node is not None:
        if isinstance(node, exp.Select):
            depth += 1
        node = node.parent
    return depth


def _is_tautology(node: exp.Or) -> bool:
    """`… OR x = x` with the same literal or column on both sides (the classic `OR 1=1`)."""
    for side in (node.this, node.expression):
        side = side.unnest() if isinstance(side, exp.Paren) else side
        if isinstance(side, exp.EQ) and side.this == side.expression:
            return True
    return False


def _name_bare_counts(tree: exp.Query) -> None:
    """An unnamed `COUNT(*)` in the outer select list is answered as `count`, like the original
    (DuckDB would call it `count_star()`)."""
    for select in ([tree] if isinstance(tree, exp.Select) else []):
        for i, item in enumerate(select.expressions):
            if isinstance(item, exp.Count) and isinstance(item.this, exp.Star):
                select.expressions[i] = exp.alias_(item, "count")


# Text columns of `events` (rust/hot/arrow.rs) that a numeric aggregate may be given.
_TEXT_COLUMNS = frozenset((
    "id", "event_type", "event_name", "ns", "trace_id", "span_id", "parent_id", "session_id", "correlation_id",
    "timestamp", "outcome", "http_url", "service_name", "vital_name", "vital_rating", "log_level", "log_message",
    "actor_id", "data", "attributes", "properties", "error_message", "http_method", "http_host", "metric_name",
    "metric_unit", "topic", "type",
))


def _lenient_numeric_aggregates(tree: exp.Query) -> None:
    """`AVG`/`SUM` of a text column read the numbers in it (others are null), as SQLite, the
    original's reference, does; DuckDB would refuse the call (11 J: `AVG(id)` answers 200)."""
    for agg in list(tree.find_all(exp.Avg, exp.Sum)):
        arg = agg.this
        if isinstance(arg, exp.Column) and arg.name.lower() in _TEXT_COLUMNS:
            agg.set("this", exp.TryCast(this=arg.copy(), to=exp.DataType.build("DOUBLE")))


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
