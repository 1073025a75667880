"""The cold tier with `cold.warehouse = "s3://bucket/prefix"`, against a real S3 HTTP server.

The server is moto's (`moto[s3]` with Flask, dev dependencies), in its own process on a free
127.0.0.1 port, with credential checking on: requests are signed and checked against IAM users it
holds, so a wrong secret is refused as AWS would refuse it. One server per module, a fresh bucket per
test, the SQLite catalog on local disk. The archiver and the commands run as real processes and get
the S3 settings from the environment variables the README documents. Not shown: real AWS or R2.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest

from tests.cold.util import (
    append_events, cli, cold_settings, config_file, spawn_archiver, unified,
)
from tests.conftest import free_port
from unified_events.cold.catalog import ColdTierError, open_catalog, open_tables
from unified_events.cold.schema import TABLE_NAME
from unified_events.config import load_config
from unified_events.stream import EventStream

REGION = "us-east-1"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# The archiver's key loses its access to S3. (Denying s3:PutObject alone was not enough on moto:
# in a try, pyarrow's multipart uploads still got through.)
NO_S3 = {"Version": "2012-10-17", "Statement": [
    *ALLOW_ALL["Statement"], {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}


@dataclass
class S3Server:
    endpoint: str
    admin: tuple[str, str]  # the tests' own key (id, secret): buckets, listing, policies
    key: tuple[str, str]  # the archiver's key

    def client(self, service: str = "s3") -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.admin[0], aws_secret_access_key=self.admin[1])

    def env(self, **changes: str) -> dict[str, str]:
        """The settings the archiver and the commands read (catalog.py), with `changes`."""
        return {"UE_S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.key[0],
                "AWS_SECRET_ACCESS_KEY": self.key[1], "AWS_REGION": REGION, "UE_S3_PATH_STYLE": "true",
                **changes}

    def new_bucket(self) -> str:
        name = f"ue-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not listen on 127.0.0.1:{port} within {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"moto's S3 server is not installed ({exc}); it is in the dev extras: pip install -e '.[dev]'")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    # moto checks credentials from the 4th request on: the first 3 make the tests' admin user.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for_port(port, proc, log)
        server = S3Server(f"http://127.0.0.1:{port}", ("unused", "unused"), ("unused", "unused"))
        server.admin = _user(server.client("iam"), "tests")  # the 3 unchecked requests
        server.key = _user(server.client("iam"), "archiver")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _user(iam: Any, name: str) -> tuple[str, str]:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 settings in this process's environment too (the tests read the table themselves)."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3


def _settings(tmp_path: Path, bucket: str, **cold: Any) -> dict[str, Any]:
    return cold_settings(tmp_path, warehouse=f"s3://{bucket}/wh", **cold)


def _table(settings: dict[str, Any]) -> Any:
    config = load_config(None, overrides=settings)
    return open_catalog(config).load_table((config.cold.namespace, TABLE_NAME))


def _rows(settings: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _table(settings).scan().to_arrow().drop_columns(["ingested_at"]).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def _archive(s3: S3Server, config: Path, source: Path) -> dict[str, Any]:
    return json.loads(cli(config, "archive", "--source", f"ndjson:{source}", "--once", "--json",
                          extra_env=s3.env()).stdout)


def test_archive_into_s3_every_event_once_and_resume(tmp_path: Path, s3_env: S3Server) -> None:
    s3 = s3_env
    bucket = s3.new_bucket()
    settings = _settings(tmp_path, bucket, batch_rows=200)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i, timestamp="2024-03-01T12:00:00Z") for i in range(500)])
    summary = _archive(s3, config, source)
    assert summary["rows"] == 500 and summary["position"] == 500 and summary["errors"] == 0

    # A second run (a restart) takes only what was appended since.
    append_events(source, [unified(i, timestamp="2024-03-02T12:00:00Z") for i in range(500, 800)])
    summary = _archive(s3, config, source)
    assert summary["rows"] == 300 and summary["position"] == 800
    ids = [row["id"] for row in _rows(settings)]
    assert ids == sorted(f"ev-{i}" for i in range(800))  # each exactly once

    # The files are objects in the bucket, under the prefix: every data file the table names is
    # there, and nothing of the warehouse went to local disk.
    table = _table(settings)
    files = table.inspect.files().to_pylist()
    assert all(f["file_path"].startswith(f"s3://{bucket}/wh/default/unified_events/data/") for f in files)
    data_keys = {k for k in s3.keys(bucket, "wh/default/unified_events/data/") if k.endswith(".parquet")}
    assert data_keys == {f["file_path"].removeprefix(f"s3://{bucket}/") for f in files}
    assert any(k.endswith(".metadata.json") for k in s3.keys(bucket, "wh/default/unified_events/metadata/"))
    assert not (tmp_path / "data" / "cold" / "warehouse").exists()
    # One object read back with boto3 (not through pyiceberg): Parquet, zstd, its rows as the table says.
    first = files[0]
    body = s3.client().get_object(Bucket=bucket, Key=first["file_path"].removeprefix(f"s3://{bucket}/"))["Body"]
    parquet = pq.ParquetFile(io.BytesIO(body.read()))
    assert parquet.metadata.num_rows == first["record_count"]
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"


def test_cold_query_reads_the_s3_table(tmp_path: Path, s3_env: S3Server) -> None:
    s3 = s3_env
    settings = _settings(tmp_path, s3.new_bucket())
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i, duration_ms=float(i), timestamp="2024-01-15T00:00:00Z") for i in range(90)]
                  + [unified(i, duration_ms=1.0, timestamp="2024-01-16T00:00:00Z") for i in range(90, 99)])
    assert _archive(s3, config, source)["rows"] == 99

    out = cli(config, "cold-query", "--json", "--explain",
              "SELECT ns, count(*) AS n, max(duration_ms) AS top FROM unified_events "
              "WHERE day = '2024-01-15' AND ns IN ('tenant-0', 'tenant-1') GROUP BY ns ORDER BY ns",
              extra_env=s3.env())
    assert json.loads(out.stdout) == [{"ns": "tenant-0", "n": 30, "top": 87.0},
                                      {"ns": "tenant-1", "n": 30, "top": 88.0}]
    assert "scan: 2 files" in out.stderr  # partition pruning works on S3 too: 2 of the 6 files read
    # Embedded, in this process (the S3 settings are in its environment: s3_env).
    stream = EventStream(load_config(None, overrides=settings))
    assert asyncio.run(stream.cold_query("SELECT count(DISTINCT id) AS n FROM events")) == [{"n": 99}]


def test_maintenance_on_s3(tmp_path: Path, s3_env: S3Server) -> None:
    s3 = s3_env
    bucket = s3.new_bucket()
    settings = _settings(tmp_path, bucket, batch_rows=60)
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    now = datetime.now(timezone.utc)
    old, recent = (now - timedelta(days=40)).isoformat(), (now - timedelta(days=2)).isoformat()
    # One tenant, two days: 2 partitions, and few files, as each costs S3 requests to moto.
    append_events(source, [unified(i, ns="tenant-0", timestamp=old if i % 2 else recent, duration_ms=float(i))
                           for i in range(180)])
    _archive(s3, config, source)
    data_prefix = "wh/default/unified_events/data/"

    def data_objects() -> set[str]:
        return {k for k in s3.keys(bucket, data_prefix) if k.endswith(".parquet")}

    def live_files() -> set[str]:
        paths = _table(settings).inspect.files().column("file_path").to_pylist()
        return {p.removeprefix(f"s3://{bucket}/") for p in paths}

    def run(*args: str) -> Any:
        return json.loads(cli(config, *args, "--json", extra_env=s3.env()).stdout)["result"]

    before = _rows(settings)
    written = data_objects()
    assert len(written) == 6 and live_files() == written  # 3 commits x 2 day partitions

    # Compaction: one file per partition, the same rows.
    compacted = run("compact", "--min-files", "2")
    assert [p["files_before"] for p in compacted] == [3, 3]
    live = live_files()
    assert len(live) == 2 and not live & written
    assert _rows(settings) == before

    # Expiry leaves one snapshot; the replaced files stay in the bucket until orphan removal, which
    # deletes them and an object no snapshot ever named, and keeps the live files.
    run("expire-snapshots", "--older-than-hours", "0", "--retain-last", "1")
    assert len(_table(settings).snapshots()) == 1
    assert data_objects() == written | live
    stray = data_prefix + "stray/not-in-any-snapshot.parquet"
    s3.client().put_object(Bucket=bucket, Key=stray, Body=b"orphan")
    orphans = run("remove-orphan-files", "--min-age-hours", "0")["orphans"]
    assert {o for o in orphans if o.endswith(".parquet")} == {f"{bucket}/{k}" for k in written | {stray}}
    assert any(o.endswith(".avro") for o in orphans)  # the expired snapshots' manifests too
    assert data_objects() == live
    assert _rows(settings) == before

    # Retention drops the old day; expiry and orphan removal then take its file out of the bucket.
    result = run("apply-retention", "--days", "30")
    assert result["rows_deleted"] == 90 and result["rows_left"] == 90
    assert [r["id"] for r in _rows(settings)] == sorted(f"ev-{i}" for i in range(0, 180, 2))
    run("expire-snapshots", "--older-than-hours", "0", "--retain-last", "1")
    run("remove-orphan-files", "--min-age-hours", "0")
    assert data_objects() == live_files() and len(data_objects()) == 1


def test_wrong_endpoint_or_credentials_name_the_setting(tmp_path: Path, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i) for i in range(10)])

    def archive(name: str, env: dict[str, str], warehouse_bucket: str = bucket) -> subprocess.CompletedProcess[str]:
        config = config_file(tmp_path, _settings(tmp_path / name, warehouse_bucket), f"{name}.toml")
        started = time.monotonic()
        out = cli(config, "archive", "--source", f"ndjson:{source}", "--once", check=False, extra_env=env)
        assert time.monotonic() - started < 30, "a bad S3 setting must fail, not hang"
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert f"cold.warehouse='s3://{warehouse_bucket}/wh'" in out.stderr
        return out

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = archive("endpoint", s3.env(UE_S3_ENDPOINT=closed))
    assert "UE_S3_ENDPOINT" in out.stderr and closed in out.stderr and "cannot reach" in out.stderr
    out = archive("secret", s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret"))
    assert "refused the credentials" in out.stderr and "AWS_SECRET_ACCESS_KEY" in out.stderr
    # Two more in this process (a process start costs a second each): an unknown key, no such bucket.
    for name, env, words in (("key", s3.env(AWS_ACCESS_KEY_ID="AKIAUNKNOWNKEY000000"), "AWS_ACCESS_KEY_ID"),
                             ("bucket", s3.env(), "does not exist")):
        warehouse_bucket = "ue-no-such-bucket" if name == "bucket" else bucket
        with pytest.MonkeyPatch.context() as mp:
            for var, value in env.items():
                mp.setenv(var, value)
            with pytest.raises(ColdTierError, match=words) as caught:
                open_tables(load_config(None, overrides=_settings(tmp_path / name, warehouse_bucket)))
        assert f"cold.warehouse='s3://{warehouse_bucket}/wh'" in str(caught.value)

    # On a table that exists, reads fail as clearly: cold-query and a maintenance command.
    settings = _settings(tmp_path / "ok", bucket)
    config = config_file(tmp_path, settings, "ok.toml")
    assert _archive(s3, config, source)["rows"] == 10
    bad = s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret")
    out = cli(config, "cold-query", "SELECT count(*) FROM events", check=False, extra_env=bad)
    assert out.returncode == 2 and "refused the credentials" in out.stderr, out.stderr
    out = cli(config, "remove-orphan-files", check=False, extra_env=bad)
    assert out.returncode == 2 and "AWS_ACCESS_KEY_ID" in out.stderr, out.stderr


def test_access_refused_mid_run_is_reported_and_retried(tmp_path: Path, s3_env: S3Server) -> None:
    """The archiver's key loses its S3 access while it runs: commits fail, the status names the
    credentials to check, and once access is back every event lands exactly once."""
    s3 = s3_env
    settings = _settings(tmp_path, s3.new_bucket())
    config = config_file(tmp_path, settings)
    source = tmp_path / "events.ndjson"
    append_events(source, [unified(i) for i in range(100)])
    status_path = tmp_path / "data" / "archiver" / "status.json"
    iam = s3.client("iam")
    archiver = spawn_archiver(config, source, tmp_path / "archiver.log", extra_env=s3.env())

    def wait_status(done: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                status = {}
            if done(status):
                return status
            time.sleep(0.1)
        raise AssertionError(f"status {status}; log:\n{(tmp_path / 'archiver.log').read_text()}")

    try:
        wait_status(lambda s: s.get("position") == 100)
        iam.put_user_policy(UserName="archiver", PolicyName="all", PolicyDocument=json.dumps(NO_S3))
        try:
            append_events(source, [unified(i) for i in range(100, 250)])
            status = wait_status(lambda s: s.get("errors_total", 0) >= 1)
            assert status["position"] == 100
            assert "AWS_ACCESS_KEY_ID" in status["last_error"] and "refused" in status["last_error"], status
        finally:
            iam.put_user_policy(UserName="archiver", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        wait_status(lambda s: s.get("position") == 250)
    finally:
        archiver.send_signal(signal.SIGTERM)
        assert archiver.wait(timeout=30) == 0
    ids = _table(settings).scan(selected_fields=("id",)).to_arrow().column("id").to_pylist()
    assert sorted(ids) == sorted(f"ev-{i}" for i in range(250))
