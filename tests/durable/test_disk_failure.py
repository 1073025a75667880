"""A failing disk under a real server: the durable log's writes start failing mid-run.

Failures a test can cause without root, deterministically:
- a write past RLIMIT_FSIZE of the server process fails with EFBIG (SIGXFSZ ignored), as a full
  disk fails with ENOSPC: one event larger than the limit is cut at the limit (a torn record);
- the log directory moved away, so the next segment roll cannot create its file (ENOENT);
- the log directory removed (`rm -rf`): writes and fsyncs still succeed, into files no restart
  will find, so the log checks each commit round that its active segment is still linked.
From then on no publish is acknowledged (HTTP 503 naming the cause, a WebSocket `error` frame),
/health answers 503, /metrics says why, reads keep working, and a restart without the fault
holds every acknowledged id exactly once (hot tier, lastEventId replay, the Iceberg table).
"""

from __future__ import annotations

import collections
import errno
import json
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cold.util import cli, cold_settings, config_file, read_table
from tests.conftest import recv_json
from tests.server.test_connection import raw_get

# RLIMIT_FSIZE of the failing server: the segment may not grow past it (nor the server's own log
# file, which stays a few KiB). One event bigger than it is the write that fails.
FILE_LIMIT = 64 << 10
BIG_PAD = 100 << 10
UNAVAILABLE = "durable log unavailable: "
TOO_LARGE = f"File too large (os error {errno.EFBIG})"
MISSING = f"No such file or directory (os error {errno.ENOENT})"
DELETED = "the active log segment was deleted while in use"
MAX_FRAMES = 100  # bound on frames read while waiting for one answer
PUBLISHERS, BATCH, MAX_BATCHES = 3, 10, 200  # 6000 small events: far more than FILE_LIMIT holds


def legacy(event_id: str, topic: str = "disk.a", **payload: Any) -> dict[str, Any]:
    return {"topic": topic, "event": {"id": event_id, "payload": payload}}


def unified(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "event_type": "log", "event_name": "disk", "ns": "disk.u"}


def ws_publish(ws: Any, event_id: str) -> dict[str, Any]:
    """Publish over WebSocket; the answer (ack or error) carrying this publish's ref."""
    ws.send(json.dumps({"type": "publish", "topic": "disk.w", "event": {"id": event_id}, "ref": event_id}))
    for _ in range(MAX_FRAMES):
        frame = recv_json(ws)
        if frame.get("ref") == event_id:
            return frame
    raise AssertionError(f"no answer to the publish of {event_id}")


def frames_until_pong(ws: Any) -> list[dict[str, Any]]:
    """Every frame queued for `ws` before now: the server answers a ping in order with its events."""
    ws.send(json.dumps({"type": "ping"}))
    frames = []
    for _ in range(MAX_FRAMES):
        frame = recv_json(ws)
        if frame["type"] == "pong":
            return frames
        frames.append(frame)
    raise AssertionError("no pong")


def id_counts(srv: Any) -> collections.Counter[str]:
    status, reply = srv.json("POST", "/query", {"sql": "SELECT id FROM events"})
    assert status == 200, reply
    return collections.Counter(row["id"] for row in reply["rows"])


def assert_refused(reply: tuple[int, Any], cause: str) -> str:
    status, body = reply
    assert status == 503 and body["error"].startswith(UNAVAILABLE) and cause in body["error"], reply
    return str(body["error"])


@pytest.mark.parametrize("durability", ["fsync", "interval"])
def test_write_failure_stops_acks_keeps_reads_and_loses_no_ack(make_server, tmp_path: Path, durability: str) -> None:
    settings = {"durability": durability}
    srv = make_server(settings, max_file_bytes=FILE_LIMIT)
    sub = srv.connect("disk.*")
    publisher = srv.connect("other")

    # Acknowledged on every publish path: HTTP legacy batch (the Rust fast path), HTTP
    # UnifiedEvent, WebSocket publish.
    status, reply = srv.json("POST", "/broadcast", [legacy(f"h-{i}") for i in range(3)])
    assert status == 200 and reply["accepted"] == 3, reply
    assert srv.json("POST", "/broadcast", unified("u-0"))[0] == 200
    assert ws_publish(publisher, "w-0")["type"] == "ack"
    acked = ["h-0", "h-1", "h-2", "u-0", "w-0"]  # in log order

    # The disk fails: this event's write is cut at the limit.
    error = assert_refused(srv.json("POST", "/broadcast", [legacy("big", pad="x" * BIG_PAD)]),
                           f"writing log segment 00000000000000000001.seg: {TOO_LARGE}")
    # Every later publish is refused with the same cause, on every path; a retry of the failed
    # event (a duplicate in the dedup window) is not acknowledged either.
    assert srv.json("POST", "/broadcast", [legacy("f-0")]) == (503, {"error": error})
    assert srv.json("POST", "/broadcast", unified("f-1")) == (503, {"error": error})
    assert srv.json("POST", "/broadcast", [unified("f-2"), unified("f-3")]) == (503, {"error": error})
    assert srv.json("POST", "/broadcast", [legacy("big", pad="x")]) == (503, {"error": error})
    frame = ws_publish(publisher, "f-4")
    assert frame["type"] == "error" and frame["code"] == "PUBLISH_FAILED" and frame["message"] == error, frame
    unacked = {"big", "f-0", "f-1", "f-2", "f-3", "f-4"}

    # Alive, and out of the load balancer: 503 on both listeners' /health, the cause in /metrics.
    assert srv.process.poll() is None
    status, health = srv.json("GET", "/health")
    assert status == 503 and health["status"] == "unhealthy" and health["error"] == error, health
    assert raw_get(srv.ws_port, "/health")[0] == 503
    assert error.endswith(srv.metrics()["durableLog"]["error"])
    status, _, text = srv.request("GET", "/metrics?format=prometheus")
    assert status == 200 and "\neventstream_log_failed 1\n" in text.decode()

    # Reads keep working: the subscriber got exactly the acknowledged events, SQL and lastEventId
    # replay see them, and nothing that was refused.
    assert [f["id"] for f in frames_until_pong(sub)] == acked
    assert id_counts(srv) == collections.Counter(acked)
    late = srv.connect("disk.*", query="lastEventId=h-0")
    assert [f["id"] for f in frames_until_pong(late)] == acked[1:]

    assert srv.stop() == 0, srv.log()  # a clean shutdown, failed log and all
    assert srv.log().count("durable log failed, publishing stops until restart") == 1

    # Restarted without the fault on the same data dir: the torn record is cut, every acknowledged
    # id is there exactly once, a refused one at most once, and publishing works again.
    srv = make_server(settings)
    log_stats = srv.metrics()["durableLog"]
    assert log_stats["torn_bytes_cut"] > 0 and log_stats["error"] is None, log_stats
    assert srv.json("GET", "/health")[0] == 200
    counts = id_counts(srv)
    assert all(counts[i] == 1 for i in acked), counts
    assert all(counts[i] <= 1 for i in unacked), counts
    replayed = [f["id"] for f in frames_until_pong(srv.connect("disk.*", query="lastEventId=h-0"))]
    assert [i for i in replayed if i in acked] == acked[1:] and len(set(replayed)) == len(replayed), replayed
    assert srv.json("POST", "/broadcast", [legacy("after-restart")])[0] == 200
    assert srv.stop() == 0

    # The archiver, run to the end over that log: the Iceberg table holds each acknowledged id once.
    cold = cold_settings(tmp_path)
    cli(config_file(tmp_path, cold), "archive", "--once", "--no-maintenance", timeout=120)
    iceberg = collections.Counter(read_table(cold).column("id").to_pylist())
    assert all(iceberg[i] == 1 for i in [*acked, "after-restart"]), iceberg
    assert all(iceberg[i] <= 1 for i in unacked), iceberg


@pytest.mark.parametrize("durability", ["fsync", "interval"])
def test_disk_filling_under_concurrent_publishers(make_server, durability: str) -> None:
    """Publishers fill the disk themselves: the batch whose write crosses the limit fails (under
    fsync with every batch of its commit round), then every later one; each publisher gets a 503
    (none hangs), and nothing acknowledged is lost."""
    settings = {"durability": durability}
    srv = make_server(settings, max_file_bytes=FILE_LIMIT)
    acked: set[str] = set()
    refusals: list[Any] = []
    lock = threading.Lock()

    def publish(n: int) -> None:
        try:
            for b in range(MAX_BATCHES):
                ids = [f"c{n}-{b}-{i}" for i in range(BATCH)]
                status, reply = srv.json("POST", "/broadcast", [legacy(i) for i in ids])
                if status != 200:
                    refusals.append((status, reply, ids))
                    return
                with lock:
                    acked.update(ids)
            refusals.append("never refused")
        except Exception as exc:  # a timeout (a hung publish) included
            refusals.append(exc)

    threads = [threading.Thread(target=publish, args=(n,), daemon=True) for n in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and len(refusals) == PUBLISHERS, refusals
    for refusal in refusals:
        assert isinstance(refusal, tuple), refusal
        assert_refused(refusal[:2], TOO_LARGE)
    assert acked and srv.process.poll() is None
    print(f"{len(acked)} ids acknowledged before the disk filled")
    assert srv.stop() == 0, srv.log()

    srv = make_server(settings)
    counts = id_counts(srv)
    assert not [i for i in acked if counts[i] != 1], "acknowledged ids lost or stored twice"
    assert max(counts.values()) == 1, counts.most_common(3)


@pytest.mark.parametrize("durability", ["fsync", "interval"])
def test_segment_roll_failure_stops_acks_and_loses_no_ack(make_server, tmp_path: Path, durability: str) -> None:
    settings = {"durability": durability, "log_segment_bytes": 4096}
    srv = make_server(settings)
    log_dir = tmp_path / "data" / "log"
    away = tmp_path / "data" / "log-away"
    acked: list[str] = []
    refused = None
    log_dir.rename(away)  # the open segment still takes writes; the next one cannot be created
    for n in range(200):  # a 4 KiB segment holds a few of these events (about 1 KiB each in the log)
        event_id = f"r-{n}"
        status, reply = srv.json("POST", "/broadcast", [legacy(event_id)])
        if status != 200:
            refused = (event_id, assert_refused((status, reply), MISSING))
            break
        acked.append(event_id)
    assert refused is not None, "the segment never rolled"
    assert "creating log segment" in refused[1] and acked, (refused, acked)
    assert srv.json("POST", "/broadcast", [legacy("r-after")]) == (503, {"error": refused[1]})
    assert srv.json("GET", "/health")[0] == 503
    assert srv.stop() == 0, srv.log()

    away.rename(log_dir)
    srv = make_server(settings)
    counts = id_counts(srv)
    assert all(counts[i] == 1 for i in acked), counts
    assert counts[refused[0]] <= 1 and counts["r-after"] <= 1, counts


@pytest.mark.parametrize("durability", ["fsync", "interval"])
def test_a_removed_log_directory_stops_acks(make_server, tmp_path: Path, durability: str) -> None:
    srv = make_server({"durability": durability, "durability_interval_ms": 20})
    assert srv.json("POST", "/broadcast", [legacy("d-0")])[0] == 200
    shutil.rmtree(tmp_path / "data" / "log")
    # fsync: the commit round of the next publish sees it before acknowledging. interval: the
    # publishes in the window before the next round are acknowledged (the interval's documented
    # risk), then the round sees it.
    refused, acked_after, deadline = None, 0, time.monotonic() + 10
    while refused is None and time.monotonic() < deadline:
        reply = srv.json("POST", "/broadcast", [legacy(f"d-{acked_after + 1}")])
        if reply[0] == 200:
            acked_after += 1
            time.sleep(0.005)
            continue
        refused = assert_refused(reply, DELETED)
    assert refused is not None, f"{acked_after} publishes acknowledged into the removed log"
    if durability == "fsync":
        assert acked_after == 0
    assert srv.json("GET", "/health")[0] == 503
    assert srv.stop() == 0, srv.log()
    assert "Traceback" not in srv.log()


def test_shutdown_completes_when_the_final_fsync_fails(make_server, tmp_path: Path) -> None:
    # The log directory removed with nothing published since: the close at shutdown is the first
    # to notice. The server still stops cleanly, its archiver too, and says why.
    srv = make_server({"durability": "fsync", **cold_settings(tmp_path)})
    assert srv.json("POST", "/broadcast", [legacy("s-0")])[0] == 200
    archiver_pid = _archiver_pid(srv)
    shutil.rmtree(tmp_path / "data" / "log")
    assert srv.stop() == 0, srv.log()
    log = srv.log()
    assert f"durable log: closing it failed: {DELETED}" in log and "Traceback" not in log, log
    assert not _running(archiver_pid), log


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child not yet reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _archiver_pid(srv: Any, timeout_s: float = 10) -> int:
    """The supervised archiver's pid, from the server's log (it starts after the listeners)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"archiver: started \(pid (\d+)\)", srv.log())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no archiver started within {timeout_s} s:\n{srv.log()}")

