"""The validation cache (validate.checked): a repeated text is not parsed again, and caching changes
no answer: a refused text is refused every time, and the rewrites of `check` are in the cached text."""

from __future__ import annotations

import pytest

from unified_events.errors import EventValidationError
from unified_events.sql.validate import checked, validate


def test_a_repeated_text_is_checked_once() -> None:
    sql = "SELECT service_name, count(*) FROM events WHERE trace_id = $1 GROUP BY service_name"
    assert checked(sql) is checked(sql)
    assert validate(sql) == checked(sql).text


@pytest.mark.parametrize("sql", ["DROP TABLE events", "SELECT * FROM read_csv('/etc/passwd')", 42, None, ""])
def test_a_refused_text_is_refused_every_time(sql: object) -> None:
    for _ in range(2):
        with pytest.raises(EventValidationError):
            checked(sql)


def test_the_cached_text_holds_the_rewrites() -> None:
    text = checked("SELECT COUNT(*), AVG(id) FROM events").text
    assert "AS count" in text and "TRY_CAST" in text.upper()
