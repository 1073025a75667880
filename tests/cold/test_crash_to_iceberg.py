"""The issue's crash test, end to end: publishers send events with known ids over HTTP while the
*server* (and with it the archiver it supervises) is SIGKILLed at random moments and restarted on
the same data dir. At the end every acknowledged id is in the Iceberg table exactly once, and no
id (acknowledged or not) is there twice.

Publishers resend a batch that got no answer (same ids), like at-least-once clients; the durable
log's dedup window catches those. Publishers come from the durable log's crash test.
"""

from __future__ import annotations

import collections
import json
import random
import time
from pathlib import Path
from typing import Any

from tests.cold.util import cold_settings, read_table
from tests.durable.test_crash import BATCH, NS, PUBLISHERS, Publishers

KILLS = 3


def test_every_acknowledged_event_lands_in_iceberg_exactly_once(make_server: Any, tmp_path: Path) -> None:
    settings = cold_settings(tmp_path, flush_interval_s=0.3, batch_rows=1000)
    rng = random.Random()
    pubs = Publishers()
    for t in pubs.threads:
        t.start()
    try:
        for _ in range(KILLS):
            srv = make_server(settings)
            pubs.url = srv.http_url
            # Late enough that the archiver (started with the server) commits now and then.
            time.sleep(rng.uniform(1.0, 3.5))
            srv.process.kill()  # SIGKILL, mid-publish and maybe mid-commit
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

    def caught_up() -> bool:
        health = srv.json("GET", "/health")[1]
        return health["logPosition"] > 0 and health["archiver"]["position"] == health["logPosition"]

    srv.wait_for(caught_up, timeout=60)
    final = srv.json("GET", "/health")[1]["archiver"]["position"]
    srv.stop()
    # The contract with the log's segment deletion: position.json says what Iceberg holds.
    assert json.loads((tmp_path / "data" / "archiver" / "position.json").read_text())["position"] == final
    table = read_table(settings)
    ids = [i for i, ns in zip(table.column("id").to_pylist(), table.column("ns").to_pylist()) if ns == NS]
    counts = collections.Counter(ids)
    twice = [i for i, c in counts.items() if c > 1]
    missing = pubs.acked - set(ids)
    print(f"acked {len(pubs.acked)} ids; Iceberg holds {len(ids)} rows")
    assert not twice, f"ids in Iceberg twice: {twice[:10]}"
    assert not missing, f"{len(missing)} acknowledged ids missing from Iceberg, e.g. {sorted(missing)[:10]}"
    assert len(pubs.acked) >= PUBLISHERS * BATCH * 4, "the test published too little to mean anything"
    log = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert log.count("archiver: committed") >= KILLS, "the archivers of the killed servers never committed"
