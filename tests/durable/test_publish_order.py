"""Events published in order over one WebSocket reach every subscriber in that order, under
`durability = "fsync"` (group commit) on a loaded machine: a real server process, real sockets.

The bug this guards against: an append whose record was already durable when it looked (an fsync
round that began after its write finished while the loop thread was descheduled) returned at
once and was fanned out ahead of earlier appends still waiting for their acknowledgement.
CPU pressure (bounded busy loops) and a log on tmpfs (fast fsyncs) make that window likely.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from websockets.sync.client import ClientConnection

COUNT = 4000
BURST = 40  # frames sent back to back: many publish tasks in flight at once
SUBSCRIBERS = 3
BUSY_LOOPS = 3
RUN_LIMIT_S = 60  # every loop below is bounded by this


def _busy_loops(seconds: float) -> list[subprocess.Popen[bytes]]:
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(BUSY_LOOPS)]


def _read_seqs(ws: ClientConnection, out: list[int], deadline: float) -> None:
    while len(out) < COUNT and time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv(timeout=1.0))
        except TimeoutError:
            continue
        if frame.get("topic") == "order":
            out.append(int(frame["id"][1:]))


def _out_of_order(seqs: list[int]) -> int:
    return sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)


def test_ws_publishes_are_delivered_in_order_under_fsync_and_cpu_pressure(make_server, tmp_path):
    shm = Path("/dev/shm")
    data_dir = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path / "data"
    settings = {
        "data_dir": str(data_dir), "durability": "fsync",
        "max_pending_messages": 1_000_000, "max_queued_bytes": 1 << 30,
        "rate_limit": {"messages_per_second": 1e9, "burst_size": 1e9},
    }
    busy: list[subprocess.Popen[bytes]] = []
    try:
        srv = make_server(settings)
        subs = [srv.connect("order") for _ in range(SUBSCRIBERS)]
        pub = srv.connect()
        deadline = time.monotonic() + RUN_LIMIT_S
        received: list[list[int]] = [[] for _ in subs]
        readers = [threading.Thread(target=_read_seqs, args=(ws, out, deadline), daemon=True)
                   for ws, out in zip(subs, received)]
        for reader in readers:
            reader.start()
        acks = threading.Thread(target=lambda: _drain(pub, deadline), daemon=True)
        acks.start()
        busy = _busy_loops(RUN_LIMIT_S)
        for start in range(1, COUNT + 1, BURST):
            if time.monotonic() > deadline:
                break
            for seq in range(start, min(start + BURST, COUNT + 1)):
                pub.send(json.dumps({"type": "publish", "topic": "order", "event": {"id": f"s{seq}"}}))
            time.sleep(0.002)
        for reader in readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        for seqs in received:
            assert sorted(seqs) == list(range(1, COUNT + 1)), f"{len(seqs)} of {COUNT} received"
            assert _out_of_order(seqs) == 0, (
                f"{_out_of_order(seqs)} out-of-order deliveries, first at "
                f"{next(i for i, (a, b) in enumerate(zip(seqs, seqs[1:])) if b < a)}")
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
        if data_dir.parent == shm:
            shutil.rmtree(data_dir, ignore_errors=True)


def _drain(ws: ClientConnection, deadline: float) -> None:
    """Read the publisher's acks so its socket never backs up."""
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=1.0)
        except TimeoutError:
            continue
        except Exception:
            return
