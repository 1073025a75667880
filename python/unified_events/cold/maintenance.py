"""Table maintenance pyiceberg 0.12 does not do itself: compaction, snapshot expiry, orphan files,
retention. Each is a command (`unified-events compact` …) and runs on a schedule in the archiver.

Compaction and retention write snapshots, so they run only under the archiver lock (the archiver's
own schedule, or a command while no archiver runs) and copy the log position into their snapshot
summary: the current snapshot always says where the archiver resumes, even once older snapshots
expire. Snapshot expiry and orphan removal write no snapshot and may run beside the archiver.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable

from pyarrow import fs as pafs
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table

from ..config import Config
from .archiver import committed_position
from .schema import POSITION_PROPERTY

if TYPE_CHECKING:
    from .archiver import Archiver

log = logging.getLogger("unified_events.maintenance")

Progress = Callable[[str], None]


def _carry(table: Table) -> dict[str, str]:
    position = committed_position(table)
    return {} if position is None else {POSITION_PROPERTY: str(position)}


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date(1970, 1, 1) + timedelta(days=int(value))


def compact(table: Table, min_files: int = 2, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Rewrite every partition holding at least `min_files` data files into one file (more when it
    exceeds the target size). Rows and their content are unchanged; the file count goes down."""
    table.refresh()
    if table.current_snapshot() is None:
        return []
    groups: dict[tuple[date, str, str], list[int]] = defaultdict(list)
    for entry in table.inspect.files().select(["partition", "record_count"]).to_pylist():
        p = entry["partition"]
        groups[(_day(p["timestamp_day"]), p["event_type"], p["ns"])].append(entry["record_count"])
    todo = sorted((key, counts) for key, counts in groups.items() if len(counts) >= min_files)
    done = []
    for n, ((day, event_type, ns), counts) in enumerate(todo, 1):
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        row_filter = And(And(GreaterThanOrEqual("timestamp", start.isoformat()),
                             LessThan("timestamp", (start + timedelta(days=1)).isoformat())),
                         And(EqualTo("event_type", event_type), EqualTo("ns", ns)))
        started = time.perf_counter()
        data = table.scan(row_filter=row_filter).to_arrow().sort_by("timestamp")
        if data.num_rows != sum(counts):
            raise RuntimeError(f"compaction of {day}/{event_type}/{ns}: scanned {data.num_rows} rows, "
                               f"the files hold {sum(counts)}; partition left as it was")
        table.overwrite(data, overwrite_filter=row_filter, snapshot_properties=_carry(table))
        result = {"day": day.isoformat(), "event_type": event_type, "ns": ns, "files_before": len(counts),
                  "rows": data.num_rows, "seconds": round(time.perf_counter() - started, 3)}
        done.append(result)
        if progress:
            progress(f"[{n}/{len(todo)}] {day} {event_type} {ns}: {len(counts)} files, {data.num_rows} rows "
                     f"rewritten in {result['seconds']} s")
    return done


def expire_snapshots(table: Table, older_than_hours: float, retain_last: int = 3) -> list[int]:
    """Expire snapshots older than the cutoff, always keeping the newest `retain_last` (and the
    current one). Their files become orphans: `remove_orphan_files` deletes them."""
    table.refresh()
    cutoff_ms = int((time.time() - older_than_hours * 3600) * 1000)
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    keep = {s.snapshot_id for s in snapshots[-retain_last:]}
    current = table.current_snapshot()
    if current is not None:
        keep.add(current.snapshot_id)
    ids = [s.snapshot_id for s in snapshots if s.timestamp_ms < cutoff_ms and s.snapshot_id not in keep]
    if ids:
        table.maintenance.expire_snapshots().by_ids(ids).commit()
    return ids


def _strip_scheme(path: str) -> str:
    return path.split("://", 1)[1] if "://" in path else path


def _filesystem(table: Table) -> tuple[pafs.FileSystem, str]:
    """The file system the table's own FileIO writes with, and the table's location on it.
    `FileSystem.from_uri` would not do for S3: it knows nothing of the endpoint, credentials and
    addressing style in the catalog's properties (catalog.py), and asks AWS for the bucket's region."""
    io = table.io
    if isinstance(io, PyArrowFileIO):
        scheme, netloc, root = io.parse_location(table.location(), io.properties)
        return io.fs_by_scheme(scheme, netloc), root
    return pafs.FileSystem.from_uri(table.location())


def remove_orphan_files(table: Table, min_age_hours: float, dry_run: bool = False,
                        progress: Progress | None = None) -> list[str]:
    """Delete data files and manifests under the table's location that no snapshot references and
    that are older than `min_age_hours` (younger ones may belong to a commit in progress)."""
    table.refresh()
    referenced: set[str] = set()
    if table.current_snapshot() is not None:
        referenced.update(_strip_scheme(p) for p in table.inspect.all_files().column("file_path").to_pylist())
        referenced.update(_strip_scheme(p) for p in table.inspect.all_manifests().column("path").to_pylist())
    referenced.update(_strip_scheme(s.manifest_list) for s in table.snapshots() if s.manifest_list)
    filesystem, root = _filesystem(table)
    cutoff_ns = time.time_ns() - int(min_age_hours * 3600 * 1e9)
    orphans = []
    for sub in ("data", "metadata"):
        selector = pafs.FileSelector(f"{root.rstrip('/')}/{sub}", recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File or info.path.endswith(".metadata.json"):
                continue  # metadata.json files are pruned by write.metadata.delete-after-commit
            if _strip_scheme(info.path) in referenced or (info.mtime_ns or 0) > cutoff_ns:
                continue
            orphans.append(info.path)
    if not dry_run:
        for n, path in enumerate(orphans, 1):
            filesystem.delete_file(path)
            if progress and (n % 100 == 0 or n == len(orphans)):
                progress(f"deleted {n}/{len(orphans)} orphan files")
    return orphans


def apply_retention(table: Table, retention_days: int, now: datetime | None = None) -> dict[str, Any]:
    """Delete events whose timestamp is before the start of the UTC day `retention_days` ago.
    The cutoff is a day boundary, so whole day partitions are dropped, not rewritten."""
    now = now or datetime.now(timezone.utc)
    today = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    cutoff = today - timedelta(days=retention_days)
    table.refresh()
    before = _total_records(table)
    if before:
        table.delete(LessThan("timestamp", cutoff.isoformat()), snapshot_properties=_carry(table))
    after = _total_records(table)
    return {"cutoff": cutoff.isoformat(), "rows_deleted": before - after, "rows_left": after}


def _total_records(table: Table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


@dataclass
class MaintenanceSchedule:
    """Run every task when `cold.maintenance_interval_s` has passed; called by the archiver when
    nothing is buffered (after a flush, or idle), so compaction never races its own appends. Under
    load this delays the next batch by the maintenance time, once per interval."""

    config: Config
    table: Table
    archiver: Archiver
    last_run: float = 0.0

    def __post_init__(self) -> None:
        self.last_run = time.monotonic()  # not right at start: let the archiver catch up first

    def run_if_due(self) -> None:
        if time.monotonic() - self.last_run < self.config.cold.maintenance_interval_s:
            return
        self.last_run = time.monotonic()
        try:
            report = run_all(self.config, self.table, log.info)
            self.archiver.stats.extra["last_maintenance"] = {"at_ms": int(time.time() * 1000), **report}
        except Exception as exc:  # noqa: BLE001 - maintenance failing must not stop archiving
            self.archiver.record_error(f"maintenance failed: {type(exc).__name__}: {exc}")


def run_all(config: Config, table: Table, progress: Progress | None = None) -> dict[str, Any]:
    cold = config.cold
    compacted = compact(table, cold.compact_min_files, progress)
    retention = apply_retention(table, cold.retention_days) if cold.retention_days else None
    expired = expire_snapshots(table, cold.snapshot_retention_hours)
    orphans = remove_orphan_files(table, cold.orphan_min_age_hours)
    return {"partitions_compacted": len(compacted), "rows_deleted_by_retention": (retention or {}).get("rows_deleted", 0),
            "snapshots_expired": len(expired), "orphan_files_deleted": len(orphans)}
