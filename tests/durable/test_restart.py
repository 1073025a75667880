"""The durable log end to end: real server processes, real files, real SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import recv_all
from unified_events.config import load_config
from unified_events.errors import ConfigError


def publish(srv, topic: str, ids: list[str]) -> None:
    status, reply = srv.json("POST", "/broadcast", [{"topic": topic, "event": {"id": i}} for i in ids])
    assert status == 200 and reply["accepted"] == len(ids), reply


def hot_ids(srv, ns: str) -> list[str]:
    status, reply = srv.json("POST", "/query/unified", {"ns": ns})
    assert status == 200, reply
    return [e["id"] for e in reply["events"]]


def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "log"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_replay_and_dedup_survive_a_restart(make_server, sig):
    srv = make_server()
    ids = [f"r-{i}" for i in range(10)]
    publish(srv, "restart", ids)
    srv.stop(sig)

    srv = make_server()
    ws = srv.connect("restart", query=f"lastEventId={ids[4]}")
    assert [f["id"] for f in recv_all(ws)] == ids[5:]
    # The dedup window came back too: the same (topic, id) is acknowledged as a duplicate, not stored twice.
    status, reply = srv.json("POST", "/broadcast", {"topic": "restart", "event": {"id": ids[0]}})
    assert status == 200 and reply.get("duplicate") is True
    assert sorted(hot_ids(srv, "restart")) == sorted(ids)
    assert srv.metrics()["durableLog"]["last_position"] == 10


def test_torn_tail_is_cut_and_publishing_continues(make_server, tmp_path):
    srv = make_server()
    publish(srv, "torn", [f"t-{i}" for i in range(5)])
    srv.stop(signal.SIGKILL)
    segment = sorted(log_dir(tmp_path).glob("*.seg"))[-1]
    garbage = b"\x40\x00\x00\x00\xde\xad\xbe\xef\x06\x00\x00\x00\x00\x00\x00\x00half a rec"
    with segment.open("ab") as fh:
        fh.write(garbage)

    srv = make_server()
    stats = srv.metrics()["durableLog"]
    assert stats["torn_bytes_cut"] == len(garbage)
    assert stats["last_position"] == 5
    publish(srv, "torn", ["t-5"])
    assert srv.metrics()["durableLog"]["last_position"] == 6
    ws = srv.connect("torn", query="lastEventId=t-0")
    assert [f["id"] for f in recv_all(ws)] == [f"t-{i}" for i in range(1, 6)]


def test_segments_are_deleted_only_after_the_archiver_committed_them(make_server, tmp_path):
    settings = {"log_segment_bytes": 4096, "cleanup_interval_ms": 100, "hot_tier_retention_ms": 500}
    srv = make_server(settings)
    for n in range(5):
        publish(srv, "ret", [f"ret-{n}-{i}" for i in range(20)])
    segments = srv.metrics()["durableLog"]["segments"]
    assert segments > 3
    time.sleep(1.0)  # older than the hot retention, but no position file: nothing goes
    assert srv.metrics()["durableLog"]["segments"] == segments

    archiver = tmp_path / "data" / "archiver"
    archiver.mkdir()
    (archiver / "position.json.tmp").write_text(json.dumps({"position": 30, "committed_at_ms": 0}))
    (archiver / "position.json.tmp").rename(archiver / "position.json")
    stats = srv.wait_for(lambda: (s := srv.metrics()["durableLog"])["segments"] < segments and s)
    assert stats["first_position"] <= 31, "only segments entirely <= the archived position go"
    assert stats["archived_position"] == 30
    assert sorted(log_dir(tmp_path).glob("*.seg"))[0].name == f"{stats['first_position']:020}.seg"


def test_durability_config_is_checked():
    with pytest.raises(ConfigError, match="durability"):
        load_config(overrides={"durability": "sometimes"})
    with pytest.raises(ConfigError, match="log_segment_bytes"):
        load_config(overrides={"log_segment_bytes": 10})
    assert load_config().durability == "fsync"


def test_interval_and_none_modes_serve(make_server):
    for mode in ("interval", "none"):
        srv = make_server({"durability": mode, "durability_interval_ms": 20})
        publish(srv, f"mode-{mode}", ["a", "b"])
        assert srv.metrics()["durableLog"]["durability"] == mode
        srv.stop()


def test_log_metrics_and_health(make_server):
    srv = make_server()
    publish(srv, "metrics", ["m-1", "m-2", "m-3"])
    stats = srv.metrics()["durableLog"]
    assert stats["last_position"] == stats["durable_position"] == 3
    assert stats["fsyncs"] >= 1 and stats["bytes_on_disk"] > 0 and stats["durability"] == "fsync"
    assert stats["archived_position"] is None
    status, _, text = srv.request("GET", "/metrics?format=prometheus")
    assert status == 200
    for name in ("eventstream_log_last_position 3", "eventstream_log_fsyncs_total", "eventstream_log_bytes",
                 "eventstream_log_fsync_seconds_total"):
        assert name in text.decode()
    assert srv.json("GET", "/health")[1]["logPosition"] == 3
