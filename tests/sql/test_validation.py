"""POST /query refuses what is not a read of the hot relations (original-system.md §11 J, §5.4),
and accepts the valid reads the original's regexes refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server

LONG = "SELECT * FROM events WHERE id = '" + "a" * 10_300 + "'"
NESTED_6 = "SELECT * FROM " + "(SELECT * FROM " * 5 + "events" + ")" * 5
JOINS_6 = "SELECT * FROM events e0" + "".join(f" JOIN events e{i} ON e0.id = e{i}.id" for i in range(1, 7))

# (body, a fragment the error must contain, case-insensitively)
REFUSED: list[tuple[Any, str]] = [
    # 11 J 64: writes, named by keyword
    ({"sql": "UPDATE events SET ns = 'x'"}, "update"),
    ({"sql": "DELETE FROM events"}, "delete"),
    ({"sql": "DROP TABLE events"}, "drop"),
    ({"sql": "INSERT INTO events (id) VALUES ('x')"}, "insert"),
    ({"sql": "ALTER TABLE events ADD COLUMN x INT"}, "alter"),
    ({"sql": "TRUNCATE TABLE events"}, "truncate"),
    ({"sql": "CREATE TABLE x (a INT)"}, "create"),
    ({"sql": "EXEC sp_executesql N'SELECT 1'"}, "exec"),
    ({"sql": "dRoP tAbLe events"}, "drop"),
    # 11 J 65: injections
    ({"sql": "SELECT * FROM events WHERE id = '1'; DROP TABLE events;"}, "Multiple SQL statements"),
    ({"sql": "SELECT\t*\tFROM\tevents;\tDROP\tTABLE\tevents"}, "Multiple SQL statements"),
    ({"sql": "SELECT id FROM events WHERE id = '1' UNION SELECT password FROM users"}, "Table 'users' is not allowed"),
    ({"sql": "SELECT id FROM events UNION ALL SELECT name FROM sqlite_master"}, "sqlite_master"),
    ({"sql": "SELECT * FROM events WHERE id = '1'-- AND ns = 'x'"}, "comments"),
    ({"sql": "SELECT * FROM events /* bypass */ WHERE ns = 'x'"}, "comments"),
    ({"sql": "SELECT * FROM events WHERE id = 'x' OR '1'='1'"}, "Tautology"),
    ({"sql": "SELECT * FROM events WHERE id = 'x' OR 1=1"}, "Tautology"),
    ({"sql": "SELECT * FROM events WHERE id = 0x44524F50"}, "Hex-encoded"),
    ({"sql": "SELECT * FROM events WHERE id = CHAR(68,82,79,80)"}, "CHAR()"),
    # 11 J 66: shape limits, unknown and system tables
    ({"sql": NESTED_6}, "nested subqueries"),
    ({"sql": JOINS_6}, "too many JOINs"),
    ({"sql": LONG}, "length"),
    ({"sql": "SELECT * FROM users"}, "Table 'users' is not allowed. Allowed tables: events, sessions, metrics, traces, logs"),
    ({"sql": "SELECT * FROM sqlite_master"}, "Access to system table 'sqlite_master' is not allowed"),
    ({"sql": "SELECT * FROM pg_catalog.pg_tables"}, "pg_catalog"),
    ({"sql": "SELECT * FROM information_schema.tables"}, "information_schema"),
    # 11 J 67: empty and missing
    ({"sql": ""}, "cannot be empty"),
    ({"sql": "   \t\n  "}, "cannot be empty"),
    ({"sql": "-- this is just a comment"}, "comments"),
    ({"sql": None}, "required"),
    ({"params": []}, "required"),
    ({"sql": 42}, "must be a string"),
    # DuckDB-specific ways out: files, table functions, catalogs, settings, other statements
    ({"sql": "SELECT * FROM read_csv('/etc/passwd')"}, "Table functions"),
    ({"sql": "SELECT * FROM '/etc/passwd'"}, "File paths"),
    ({"sql": "SELECT * FROM duckdb_settings()"}, "Table functions"),
    ({"sql": "SELECT * FROM duckdb_tables"}, "system table"),
    ({"sql": "SELECT * FROM glob('/*')"}, "Table functions"),
    ({"sql": "SELECT getenv('HOME')"}, "Function 'getenv' is not allowed"),
    ({"sql": "SELECT current_setting('memory_limit')"}, "current_setting"),
    ({"sql": "COPY events TO '/tmp/out.csv'"}, "copy"),
    ({"sql": "ATTACH '/tmp/x.db' AS x"}, "attach"),
    ({"sql": "INSTALL httpfs"}, "install"),
    ({"sql": "SET enable_external_access = true"}, "set"),
    ({"sql": "PRAGMA database_list"}, "pragma"),
    ({"sql": "DESCRIBE events"}, "Only SELECT"),
    ({"sql": "SELECT * INTO copy_of FROM events"}, "INTO"),
    ({"sql": "SELECT * FROM main.events"}, "main"),
    ({"sql": "SELECT * FROM hot_rows"}, "Table 'hot_rows' is not allowed"),
    ({"sql": "SELECT * FROM events WHERE"}, "syntax error"),
    ({"sql": "SELECT * FROM events WHERE id = $1", "params": {"a": 1}}, "params must be an array"),
    ({"sql": "SELECT * FROM events WHERE id = $1", "params": [[1]]}, "params must be"),
]


@pytest.mark.parametrize(("body", "fragment"), REFUSED, ids=[str(b.get("sql"))[:40] for b, _ in REFUSED])
def test_refused_with_400_naming_the_problem(server: Server, body: Any, fragment: str) -> None:
    status, payload = server.json("POST", "/query", body)
    assert status == 400, payload
    assert fragment.lower() in payload["error"].lower(), payload


@pytest.mark.parametrize("raw", [b"", b"not json", b"{"])
def test_unparseable_body(server: Server, raw: bytes) -> None:
    status, _, payload = server.request("POST", "/query", raw=raw)
    assert status == 400
    assert b"Invalid JSON body" in payload


ACCEPTED = [
    # false positives of the original's regexes
    "SELECT id FROM events WHERE event_name = 'order.update'",
    "SELECT extra->>'db_system' AS db_system FROM events",
    "SELECT EXTRACT(epoch FROM now()) AS t",
    "SELECT id FROM events WHERE log_message = 'DROP TABLE users; -- /* */'",
    # shapes the original refused but which are plain reads here
    "SELECT id FROM traces UNION ALL SELECT id FROM logs",
    "WITH recent AS (SELECT * FROM events WHERE timestamp_ms > 0) SELECT count(*) FROM recent",
    "SELECT * FROM events;",
    "FROM events SELECT id",
]


@pytest.mark.parametrize("sql", ACCEPTED)
def test_valid_reads_are_not_refused(server: Server, sql: str) -> None:
    status, payload = server.json("POST", "/query", {"sql": sql})
    assert status == 200, payload
