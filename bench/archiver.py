"""Archiver benchmark: rows/s into the 175-column Iceberg table, and publish -> Iceberg freshness.

    .venv/bin/python bench/archiver.py throughput [--events 200000] [--batch-rows 10000,50000,100000]
    .venv/bin/python bench/archiver.py read-convert [--events 500000] [--baseline DIR]
    .venv/bin/python bench/archiver.py freshness  [--rate 10000] [--duration 60] [--flush-interval 5]

throughput: events are written to a real durable log (`_core.DurableLog`, durability none), then
the archiver (the same `Archiver` class `unified-events archive` runs, reading with `LogReader`)
drains them into a fresh SQLite catalog + local warehouse, once per batch size. Reported: rows/s
end to end, and the split between decoding+Arrow conversion and the Iceberg append.

read-convert: the same log, read and converted only (no commit), in reads of `--batch-rows`, each
run in its own process: CPU seconds per 100k rows for reading and for converting, this checkout
against `--baseline` (another checkout with its own built `_core`), alternating.

freshness: `unified-events serve` (durability fsync, the supervised archiver) takes HTTP
`POST /broadcast` batches of 100 at a steady rate; a poller refreshes the table every 0.25 s and
records, per event, when its snapshot first became visible. Freshness = visible - publish time.
Results go to bench/results/archiver-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from unified_events import _core  # noqa: E402
from unified_events.cold.archiver import Archiver  # noqa: E402
from unified_events.cold.catalog import open_tables  # noqa: E402
from unified_events.cold.source import DurableLogSource  # noqa: E402
from unified_events.config import load_config  # noqa: E402
from unified_events.durable import encode  # noqa: E402
from unified_events.events import parse_body  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TYPES = ("trace", "log", "metric")
TENANTS = ("acme", "globex", "initech")
PUBLISHERS = 4


def sample_event(i: int, rng: random.Random) -> dict:
    """A realistic event: ~25 of the 175 columns set, JSON payloads, 3 types x 3 tenants."""
    kind = TYPES[i % 3]
    return {
        "id": f"bench-{i}", "event_type": kind, "event_name": f"{kind}.sample", "ns": TENANTS[(i // 3) % 3],
        "trace_id": f"{rng.getrandbits(128):032x}", "span_id": f"{rng.getrandbits(64):016x}",
        "session_id": f"s-{i % 1000}", "actor_id": f"user-{i % 5000}", "service_name": "checkout",
        "service_version": "1.4.2", "http_method": "POST", "http_path": "/api/orders", "http_status": 200,
        "http_url": "https://shop.example.com/api/orders", "duration_ms": rng.random() * 100,
        "outcome": "success", "log_level": "info", "log_message": "order placed " + "x" * 40,
        "metric_name": "latency", "metric_value": rng.random(), "geo_country": "DE", "os_name": "Linux",
        "data": {"order": i, "items": [1, 2, 3], "total": 42.5}, "attributes": {"region": "eu", "tier": "gold"},
        "labels": {"env": "prod"},
    }


def throughput(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ue-archbench-"))
    try:
        log_dir = work / "log"
        write_log(log_dir, args.events)
        runs = []
        # Each (batch size, conversion) pair `--repeat` times, the conversions alternating, so a
        # before/after comparison shares the machine's load of the moment.
        plan = [(int(b), mode) for _ in range(args.repeat) for b in args.batch_rows.split(",")
                for mode in args.convert.split(",")]
        for n, (batch_rows, mode) in enumerate(plan):
            if mode == "baseline":
                run = baseline_run(args, batch_rows)
                runs.append(run)
                print(json.dumps(run), flush=True)
                continue
            data_dir = work / f"data-{n}"
            (data_dir).mkdir()
            os.symlink(log_dir, data_dir / "log")
            config = load_config(None, overrides={"data_dir": str(data_dir), "cold": {
                "batch_rows": batch_rows, "batch_bytes": 1 << 30, "flush_interval_s": 3600.0,
                "maintenance_interval_s": 0}})
            events, dead = open_tables(config)
            archiver = Archiver(config, DurableLogSource(data_dir / "log"), events, dead)
            archiver.fast_convert = archiver.slice_partitions = archiver.write_files = mode == "fast"  # reference: as before
            archiver.overlap_commits = mode == "fast"
            append_s = [0.0]
            commit = archiver._commit

            def timed_commit(*a: object, _commit=commit, _acc=append_s) -> None:
                t = time.perf_counter()
                _commit(*a)
                _acc[0] += time.perf_counter() - t

            archiver._commit = timed_commit  # type: ignore[method-assign]
            flushes = 0
            cpu0, t0 = time.process_time(), time.perf_counter()
            archiver.resume()
            while True:
                got = archiver.fill()
                if archiver._batch and (got == 0 or archiver._due()):
                    archiver.flush()  # fast: the commit overlaps the next fill and conversion
                    flushes += 1
                elif got == 0:
                    break
            archiver.wait_for_commit()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            assert archiver.stats.rows_total == args.events
            files = len(events.inspect.files())
            # With overlapping commits (fast), append_s runs alongside reading and converting, so
            # read_convert_s (elapsed - append_s) understates the conversion; rows_per_s is the measure.
            run = {"convert": mode, "batch_rows": batch_rows, "rows": args.events, "seconds": round(elapsed, 2),
                   "read_convert_s": round(elapsed - append_s[0], 2), "append_s": round(append_s[0], 2),  # fast: overlap
                   "rows_per_s": round(args.events / elapsed), "cpu_seconds": round(cpu, 2),
                   "commits": archiver.stats.commits_total, "flushes": flushes,
                   "last_commit_s": round(archiver.stats.last_commit_s, 3),
                   "data_files": files}
            runs.append(run)
            print(json.dumps(run), flush=True)
        return {"runs": runs}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def baseline_run(args: argparse.Namespace, batch_rows: int) -> dict:
    """One `fast` run of another checkout's benchmark (`--baseline DIR`, e.g. an export of main
    with its own release `_core` built in), in a subprocess: before/after in the same session."""
    script = Path(args.baseline).resolve() / "bench" / "archiver.py"
    out = subprocess.run([sys.executable, str(script), "throughput", "--events", str(args.events),
                          "--batch-rows", str(batch_rows), "--convert", "fast", "--repeat", "1"],
                         check=True, capture_output=True, text=True).stdout
    run = next(json.loads(line) for line in out.splitlines() if line.startswith('{"convert"'))
    return {**run, "convert": "baseline", "baseline": str(script.parents[1])}


# Reads the whole log in reads of `batch_rows` and converts each read as the archiver does (GC off),
# with the checkout at argv[1]'s own code: CPU seconds of reading and of converting. Run in a
# subprocess so a baseline checkout imports its own package and `_core`.
_READ_CONVERT = """
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from unified_events.cold import fast
from unified_events.cold.source import DurableLogSource
source, batch_rows = DurableLogSource(sys.argv[2]), int(sys.argv[3])
raw = hasattr(fast, "convert_raw")  # this branch: reads stay in Rust (`RawRecords`)
fast._converter()
gc.disable()
after = rows = 0
read_cpu = convert_cpu = 0.0
t0 = time.perf_counter()
while True:
    c0 = time.process_time()
    got = source.read(after, batch_rows, 1 << 30)
    c1 = time.process_time()
    if not len(got):
        break
    converted = fast.convert_raw([got], source.decode) if raw else fast.convert_records(got, source.decode)
    del converted
    c2 = time.process_time()
    after = got.position(len(got) - 1) if raw else got[-1][0]
    rows += len(got)
    del got  # freeing the records is part of reading them
    read_cpu += time.process_time() - c2 + c1 - c0
    convert_cpu += c2 - c1
per = 100_000 / rows
print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - t0, 3),
                  "read_cpu_per_100k": round(read_cpu * per, 3), "convert_cpu_per_100k": round(convert_cpu * per, 3),
                  "cpu_per_100k": round((read_cpu + convert_cpu) * per, 3)}))
"""


def read_convert(args: argparse.Namespace) -> dict:
    """CPU per 100k rows of reading the log and converting (no commit), this checkout against
    `--baseline` (if given), alternating, each run in its own process."""
    work = Path(tempfile.mkdtemp(prefix="ue-readconv-"))
    try:
        write_log(work / "log", args.events)
        checkouts = ([("baseline", Path(args.baseline).resolve())] if args.baseline else []) + [
            ("this", Path(__file__).resolve().parents[1])]
        runs = []
        for _ in range(args.repeat):
            for name, root in checkouts:
                out = subprocess.run([sys.executable, "-c", _READ_CONVERT, str(root / "python"), str(work / "log"),
                                      str(args.batch_rows)], check=True, capture_output=True, text=True).stdout
                run = {"code": name, "root": str(root), "batch_rows": args.batch_rows, **json.loads(out)}
                runs.append(run)
                print(json.dumps(run), flush=True)
        return {"runs": runs}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_log(log_dir: Path, events: int) -> None:
    rng = random.Random(1)
    writer = _core.DurableLog(str(log_dir), durability="none")
    now_ms = int(time.time() * 1000)
    t0 = time.perf_counter()
    for start in range(0, events, 10_000):
        writer.append([encode(parse_body(sample_event(i, rng)), now_ms) for i in range(start, min(events, start + 10_000))])
    writer.close()
    print(f"wrote {events} events to the log in {time.perf_counter() - t0:.1f} s", flush=True)


def freshness(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import start_server

    from unified_events.cold.catalog import load_events_table

    work = Path(tempfile.mkdtemp(prefix="ue-freshbench-"))
    settings = {"durability": "fsync", "max_batch_events": 1000, "cold": {
        "flush_interval_s": args.flush_interval, "batch_rows": 100_000, "poll_interval_ms": 100,
        "maintenance_interval_s": 0}}
    srv = start_server(work, settings)
    config = load_config(None, overrides={"data_dir": str(work / "data")})
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()
    late = [0]

    def publish(worker: int) -> None:
        # PUBLISHERS threads, each pacing rate/PUBLISHERS in batches of 100 (one sequential HTTP
        # client with fsync acknowledgements tops out near 5k events/s here).
        interval = 100 * PUBLISHERS / args.rate
        next_at = time.perf_counter() + worker * interval / PUBLISHERS
        seq = worker * 1_000_000_000
        while not stop.is_set():
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                late[0] += 1
            ids = [f"f-{seq + i}" for i in range(100)]
            seq += 100
            body = json.dumps([{"id": i, "event_type": "trace", "event_name": "fresh", "ns": "bench"} for i in ids])
            t = time.time()
            req = urllib.request.Request(srv.http_url + "/broadcast", data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
            for i in ids:
                sent[i] = t

    def poll() -> None:
        table = None
        last_snapshot = None
        while not stop.is_set() or len(seen) < len(sent):
            time.sleep(0.25)
            try:
                table = table or load_events_table(config)
                table.refresh()
            except Exception:  # noqa: BLE001 - the table appears with the first commit
                continue
            snap = table.current_snapshot()
            if snap is None or snap.snapshot_id == last_snapshot:
                if stop.is_set() and time.time() > stop_at[0] + args.flush_interval + 30:
                    return
                continue
            last_snapshot = snap.snapshot_id
            now = time.time()
            ids = table.scan(selected_fields=("id",), row_filter=f"ingested_at >= '{since_iso[0]}'").to_arrow()
            for i in ids.column("id").to_pylist():
                seen.setdefault(i, now)

    since_iso = [time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 5))]
    stop_at = [0.0]
    publishers = [threading.Thread(target=publish, args=(n,)) for n in range(PUBLISHERS)]
    threads = [*publishers, threading.Thread(target=poll)]
    for t in threads:
        t.start()
    time.sleep(args.duration)
    stop_at[0] = time.time()
    stop.set()
    for t in publishers:
        t.join()
    threads[-1].join(timeout=args.flush_interval + 60)
    lat = sorted(seen[i] - sent[i] for i in sent if i in seen)
    srv.stop()
    shutil.rmtree(work, ignore_errors=True)
    q = (lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p))], 3)) if lat else (lambda p: None)
    result = {"rate_offered": args.rate, "duration_s": args.duration, "flush_interval_s": args.flush_interval,
              "published": len(sent), "achieved_rate": round(len(sent) / args.duration),
              "publisher_late_batches": late[0], "visible": len(lat),
              "freshness_p50_s": q(0.5), "freshness_p99_s": q(0.99), "freshness_max_s": lat[-1] if lat else None}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--events", type=int, default=200_000)
    t.add_argument("--batch-rows", default="10000,50000,100000")
    t.add_argument("--convert", default="fast", help="fast (Rust conversion, cold/fast.py; partitions by "
                   "slicing, cold/partitions.py; our Parquet writes, cold/writer.py), reference (all as "
                   "before), baseline (see --baseline), or several, alternating: reference,fast")
    t.add_argument("--repeat", type=int, default=1)
    t.add_argument("--baseline", help="a checkout of the code to compare with (its own built _core): mode "
                   "`baseline` in --convert runs its `fast` mode in a subprocess, e.g. --convert baseline,fast")
    r = sub.add_parser("read-convert", help="CPU of reading + converting only (no commit), against --baseline")
    r.add_argument("--events", type=int, default=500_000)
    r.add_argument("--batch-rows", type=int, default=100_000)
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--baseline", help="a checkout of the code to compare with (its own built _core)")
    f = sub.add_parser("freshness")
    f.add_argument("--rate", type=int, default=10_000, help="events/s (HTTP batches of 100)")
    f.add_argument("--duration", type=float, default=60)
    f.add_argument("--flush-interval", type=float, default=5.0)
    args = parser.parse_args()
    load = os.getloadavg()
    result = {"throughput": throughput, "read-convert": read_convert, "freshness": freshness}[args.what](args)
    core = Path(_core.__file__).read_bytes()
    build = "debug" if b"precondition_check" in core or b"ub_checks" in core else "release"  # as fanout.py
    result.update(what=args.what, rust_build=build, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  loadavg_before=[round(x, 2) for x in load], loadavg_after=[round(x, 2) for x in os.getloadavg()],
                  cpus=os.cpu_count())
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"archiver-{args.what}-{time.strftime('%Y-%m-%d-%H%M', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
