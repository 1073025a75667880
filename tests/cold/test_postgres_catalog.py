"""The SqlCatalog on the PostgreSQL running on this machine (skipped, with the reason, if absent)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.cold.util import append_events, cli, cold_settings, config_file, read_table, unified
from unified_events.cold.catalog import open_catalog
from unified_events.config import load_config

PG_URI = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_available() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=2).close()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"no PostgreSQL at {PG_URI}: {type(exc).__name__}: {exc}"


def test_archive_with_a_postgresql_catalog(tmp_path: Path) -> None:
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    namespace = f"ue_test_{uuid.uuid4().hex[:10]}"  # other runs and engineers share the database
    settings = cold_settings(tmp_path, catalog_uri=PG_URI, namespace=namespace)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i) for i in range(200)])
    try:
        assert json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)["rows"] == 200
        append_events(source, [unified(i) for i in range(200, 260)])
        summary = json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json").stdout)
        assert summary["rows"] == 60 and summary["position"] == 260
        ids = read_table(settings).column("id").to_pylist()
        assert len(ids) == 260 and len(set(ids)) == 260
        out = cli(config, "cold-query", "--json", "SELECT count(DISTINCT id) AS n FROM events")
        assert json.loads(out.stdout) == [{"n": 260}]
        assert not (tmp_path / "data" / "cold" / "catalog.db").exists()  # not SQLite
    finally:
        catalog = open_catalog(load_config(None, overrides=settings))
        for ident in catalog.list_tables(namespace):
            catalog.drop_table(ident)
        catalog.drop_namespace(namespace)


def test_bad_catalog_uri_is_a_clear_error(tmp_path: Path) -> None:
    settings = cold_settings(tmp_path, catalog_uri="mysql://nope")
    out = cli(config_file(tmp_path, settings), "archive", "--once", check=False)
    assert out.returncode == 2 and "cold.catalog_uri" in out.stderr and "postgresql://" in out.stderr
