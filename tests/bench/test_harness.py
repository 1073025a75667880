"""`unified-events bench` against a real server: what it reports must be what happened.

Each test runs the real command in a subprocess (real subscriber processes, real sockets) for
about two seconds at a low rate, and reads its --json report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from unified_events.loadgen.procstat import is_loopback_url

BENCH_TIMEOUT_S = 60


def bench(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "unified_events.cli", "bench", "--quiet", "--json", str(out), *args],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT_S,
    )
    report = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, report, proc.stdout + proc.stderr


def only_result(report: dict[str, Any] | None) -> dict[str, Any]:
    assert report is not None
    assert len(report["results"]) == 1
    return report["results"][0]


def test_every_published_event_reaches_every_subscriber(make_server: Any, tmp_path: Path) -> None:
    server = make_server()
    code, report, output = bench(tmp_path, "--url", server.ws_url + "/events", "--http-url", server.http_url,
                                 "--connections", "12", "--topics", "3", "--publish-rate", "40",
                                 "--duration", "2s", "--processes", "2")
    assert code == 0, output
    result = only_result(report)
    published = result["publishing"]["events_published"]
    delivery = result["delivery"]
    assert result["connections"]["connected"] == 12 and result["connections"]["failed"] == 0
    assert published >= 40  # paced: about 80 in 2 s; the exact count does not matter, the accounting does
    assert delivery["expected_deliveries"] == published * 4  # 12 subscribers over 3 topics
    assert delivery["delivered"] == delivery["expected_deliveries"]
    assert delivery["missing"] == 0 and delivery["duplicates"] == 0 and delivery["all_delivered"]
    assert result["latency_ms"]["count"] > 0 and result["latency_ms"]["p50"] > 0
    assert result["server"]["available"] and result["server"]["dropped"].get("rate_limit", 0) == 0
    assert "gaps" in output and "latency ms" in output  # the readable table went to stdout


def test_http_publishing_and_a_wildcard_subscription(make_server: Any, tmp_path: Path) -> None:
    server = make_server()
    code, report, output = bench(tmp_path, "--url", server.ws_url + "/events", "--http-url", server.http_url,
                                 "--connections", "6", "--topics", "4", "--patterns", "--publishers", "2",
                                 "--publish-via", "http", "--publish-rate", "40", "--duration", "2s")
    assert code == 0, output
    result = only_result(report)
    published = result["publishing"]["events_published"]
    assert result["publishing"]["via"] == "http"
    assert result["delivery"]["expected_deliveries"] == published * 6  # every subscriber follows every topic
    assert result["delivery"]["delivered"] == published * 6
    assert result["delivery"]["missing"] == 0


def test_events_the_server_drops_show_up_as_gaps(make_server: Any, tmp_path: Path) -> None:
    # Each connection may receive 5 events/s (burst 5): at 50 events/s most are dropped by the
    # server's rate limit, and the harness must see every one of them as missing.
    server = make_server({"rate_limit": {"messages_per_second": 5, "burst_size": 5}})
    code, report, output = bench(tmp_path, "--url", server.ws_url + "/events", "--http-url", server.http_url,
                                 "--connections", "4", "--publish-rate", "50", "--duration", "2s")
    assert code == 0, output
    result = only_result(report)
    delivery = result["delivery"]
    dropped = result["server"]["dropped"]["rate_limit"]
    assert delivery["missing"] > 0 and delivery["subscribers_with_gaps"] == 4
    assert not delivery["all_delivered"]
    assert delivery["delivered"] + delivery["missing"] == delivery["expected_deliveries"]
    assert dropped == delivery["missing"]  # what the server says it dropped is what the clients missed


def test_a_publisher_that_cannot_connect_fails_the_run_with_a_message(make_server: Any, tmp_path: Path) -> None:
    server = make_server({"max_connections": 1})
    code, report, output = bench(tmp_path, "--url", server.ws_url + "/events", "--http-url", server.http_url,
                                 "--connections", "1", "--publish-rate", "10", "--duration", "1s")
    assert code == 1 and report is None
    assert "run failed" in output and "503" in output


def test_a_target_that_is_not_loopback_is_refused(tmp_path: Path) -> None:
    code, report, output = bench(tmp_path, "--url", "ws://192.0.2.1:8788/events", "--duration", "1s")
    assert code == 2 and report is None
    assert "--allow-remote" in output


def test_loopback_detection() -> None:
    assert is_loopback_url("ws://127.0.0.1:8788/events")
    assert is_loopback_url("http://localhost:8787")
    assert is_loopback_url("ws://[::1]:8788/")
    assert not is_loopback_url("ws://192.0.2.1:8788/events")
    assert not is_loopback_url("ws:///events")


def test_refused_connections_are_reported_as_failures(make_server: Any, tmp_path: Path) -> None:
    server = make_server({"max_connections": 3})  # the 4th and 5th upgrade get 503
    code, report, output = bench(tmp_path, "--url", server.ws_url + "/events", "--http-url", server.http_url,
                                 "--connections", "5", "--publish-rate", "10", "--duration", "1s",
                                 "--publish-via", "http")  # a WebSocket publisher would be refused too
    assert code == 0, output
    result = only_result(report)
    assert result["connections"]["connected"] == 3 and result["connections"]["failed"] == 2
    assert result["connections"]["connect_errors"]  # by exception name
    delivery = result["delivery"]
    assert delivery["subscribers_never_connected"] == 2 and delivery["subscribers_with_gaps"] == 2
