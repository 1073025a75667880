"""Crash test: publishers keep sending events with known ids over HTTP while the server is
SIGKILLed at random moments and restarted on the same data dir. Every acknowledged id must be
in the hot tier of the last server exactly once, and no id may appear twice.

Publishers behave like at-least-once clients: a batch that got no answer is resent (same ids)
to the next server, so the dedup window rebuilt from the log is exercised too.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.durable.test_restart import hot_ids

KILLS = 4
PUBLISHERS = 3
BATCH = 25
NS = "crash"


class Publishers:
    def __init__(self) -> None:
        self.url: str | None = None
        self.stop = threading.Event()
        self.acked: set[str] = set()
        self.sent_batches = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(PUBLISHERS)]

    def run(self, n: int) -> None:
        batch_no = 0
        while not self.stop.is_set():
            ids = [f"p{n}-b{batch_no}-{i}" for i in range(BATCH)]
            body = json.dumps([{"id": i, "event_type": "log", "event_name": "crash", "ns": NS} for i in ids]).encode()
            while not self.stop.is_set():  # resend until acknowledged
                url = self.url
                if url is None:
                    time.sleep(0.02)
                    continue
                try:
                    req = urllib.request.Request(url + "/broadcast", data=body, method="POST",
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        reply = json.loads(resp.read())
                except (OSError, urllib.error.URLError, ValueError):
                    time.sleep(0.02)
                    continue
                assert reply["accepted"] == BATCH, reply
                with self.lock:
                    self.acked.update(ids)
                    self.sent_batches += 1
                break
            batch_no += 1


# `interval` acknowledges before the fsync: a process crash still loses nothing (the page cache
# survives it); only a machine crash can lose its window, which this test cannot cause.
@pytest.mark.parametrize("durability", ["fsync", "interval"])
def test_every_acknowledged_event_survives_sigkill(make_server, durability):
    settings = {"durability": durability}
    rng = random.Random()
    pubs = Publishers()
    for t in pubs.threads:
        t.start()
    try:
        for _ in range(KILLS):
            srv = make_server(settings)
            pubs.url = srv.http_url
            time.sleep(rng.uniform(0.2, 1.0))
            srv.process.kill()  # SIGKILL, mid-publish
            pubs.url = None
            srv.process.wait()
        srv = make_server(settings)
        pubs.url = srv.http_url
        before = len(pubs.acked)
        srv.wait_for(lambda: len(pubs.acked) > before + PUBLISHERS * BATCH, timeout=30)
    finally:
        pubs.stop.set()
        for t in pubs.threads:
            t.join(timeout=15)
    found = hot_ids(srv, NS)
    print(f"acked {len(pubs.acked)} ids in {pubs.sent_batches} batches; hot tier holds {len(found)}")
    counts = collections.Counter(found)
    twice = [i for i, c in counts.items() if c > 1]
    missing = pubs.acked - set(found)
    assert not twice, f"ids stored twice: {twice[:10]}"
    assert not missing, f"{len(missing)} acknowledged ids lost, e.g. {sorted(missing)[:10]}"
    assert len(pubs.acked) >= PUBLISHERS * BATCH * 2, "the test published too little to mean anything"
