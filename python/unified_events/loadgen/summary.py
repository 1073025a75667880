"""A run's report: the workers' gap and latency data merged, rates over the measurement window,
the server's drops and its CPU and RSS series. The fields are those of the --json report."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from .hdr import Histogram
from .schedule import Scheduler
from .subscribers import DISCONNECTS, FAILED, NOTICES, RECONNECTS

if TYPE_CHECKING:
    from .run import RunSpec


def connection_summary(spec: RunSpec, ramp: dict[str, Any], idle: dict[str, Any] | None,
                        after: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requested": spec.connections, "connected": ramp["connected"], "failed": ramp["failed"],
        "ramp_s": round(ramp["ramp_s"], 3),
        "connect_rate_per_s": round(ramp["connected"] / ramp["ramp_s"], 1) if ramp["ramp_s"] > 0 else None,
        "connect_errors": ramp["connect_errors"],
    }
    if idle and after and idle.get("rss_bytes") and after.get("rss_bytes"):
        out["server_rss_idle_bytes"] = idle["rss_bytes"]
        out["server_rss_connected_bytes"] = after["rss_bytes"]
        if ramp["connected"]:
            out["server_bytes_per_connection"] = round((after["rss_bytes"] - idle["rss_bytes"]) / ramp["connected"])
    return out


def summarise(spec: RunSpec, reports: list[dict[str, Any]], schedule: Scheduler, window: dict[str, Any],
              end: dict[str, Any], drain: dict[str, Any], samples: list[dict[str, Any]], publishers: list[Any],
              restarted: bool) -> dict[str, Any]:
    """Merge the workers' reports with the parent's window snapshots and server samples."""
    hist = Histogram.merged(Histogram.from_dict(r["hist"]) for r in reports)
    rows = [row for r in reports for row in r["subs"]]
    missing = [row[4] for row in rows]
    totals = [sum(r["totals"][i] for r in reports) for i in range(len(reports[0]["totals"]))] if reports else []
    span = max(end["t"] - window["t"], 1e-9)
    delivered_total = sum(row[1] for row in rows)
    worst = sorted(rows, key=lambda row: -row[4])[:10]
    pub_stats = [p.stats() for p in publishers]
    busy = (end["busy"][0] - window["busy"][0], end["busy"][1] - window["busy"][1])
    cores = os.cpu_count() or 1
    machine_busy = busy[0] / busy[1] * cores if busy[1] else 0.0
    cpu_use = {k: round((end["cpu"][k] - window["cpu"][k]) / span, 3) for k in end["cpu"]}
    if restarted or not cpu_use["server"]:
        # /proc readings of two different processes, or no local pid (a server given by URL):
        # use the per-second series from /metrics instead.
        cpu_use["server"] = _server_cores(samples, window["t"], end["t"])
    delivered_per_s = (end["delivered"] - window["delivered"]) / span
    server_cores = cpu_use.get("server") or None
    out: dict[str, Any] = {
        "publishing": {
            "via": spec.publish_via if publishers else None,
            "publishers": len(publishers),
            "offered_events_per_s": None if math.isinf(spec.publish_rate) else spec.publish_rate,
            "closed_loop": math.isinf(spec.publish_rate),
            "events_published": schedule.scheduled,
            "events_per_s": round((end["scheduled"] - window["scheduled"]) / span, 1),
            "publisher_stats": pub_stats,
            "send_lag_ms": schedule.lag.summary_ms(),
        },
        "delivery": {
            "window_s": round(span, 3),
            "offered_deliveries_per_s": round((end["expected"] - window["expected"]) / span, 1),
            "delivered_per_s": round(delivered_per_s, 1),
            # Server CPU per delivery is the cleaner comparison on a shared machine: it does not
            # depend on how much CPU the clients and other work left to the server.
            "server_cpu_us_per_delivery": round(server_cores / delivered_per_s * 1e6, 3)
            if server_cores and delivered_per_s > 0 else None,
            "expected_deliveries": schedule.expected,
            "delivered": delivered_total,
            "all_delivered": delivered_total >= schedule.expected and sum(missing) == 0,
            "drain": drain,
            "missing": sum(missing),
            "duplicates": sum(row[3] for row in rows),
            "subscribers_with_gaps": sum(1 for m in missing if m),
            "subscribers_never_connected": sum(1 for row in rows if not row[5]),
            "max_missing_per_subscriber": max(missing, default=0),
            "worst_subscribers": [{"index": r[0], "events": r[1], "gaps_inside": r[2], "duplicates": r[3],
                                   "missing": r[4]} for r in worst if r[4] or r[3]],
            "disconnects": totals[DISCONNECTS] if totals else 0,
            "reconnects": totals[RECONNECTS] if totals else 0,
            "backpressure_notices_seen": totals[NOTICES] if totals else 0,
        },
        "latency_ms": {**hist.summary_ms(), "timed_every_kth_connection": spec.latency_every,
                       "queueing_only": math.isinf(spec.publish_rate)},
        "latency_histogram_us": hist.to_dict(),
        "cpu_cores": {**cpu_use, "machine_busy": round(machine_busy, 3),
                      "other": round(max(0.0, machine_busy - sum(cpu_use.values())), 3)},
        "server": _server_summary(spec, samples),
    }
    if reports:
        out["connections_final"] = {"failed_total": totals[FAILED], "connect_errors": _merge_errors(reports)}
    return out


def _server_cores(samples: list[dict[str, Any]], t_from: float, t_to: float) -> float:
    """Server CPU cores between two times from the per-second samples; a counter that went down
    means a new process, whose whole count is added."""
    inside = [s for s in samples if t_from <= s["t"] <= t_to and s.get("cpu_seconds") is not None]
    used = 0.0
    for prev, cur in zip(inside, inside[1:]):
        step = cur["cpu_seconds"] - prev["cpu_seconds"]
        used += step if step >= 0 else cur["cpu_seconds"]
    span = inside[-1]["t"] - inside[0]["t"] if len(inside) > 1 else 0.0
    return round(used / span, 3) if span > 0 else 0.0


def _merge_errors(reports: list[dict[str, Any]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for report in reports:
        for name, n in report["connect_errors"].items():
            merged[name] = merged.get(name, 0) + n
    return merged


def _server_summary(spec: RunSpec, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU and RSS over time, drops by reason. Counters restart from 0 when the server restarts,
    so only positive steps are added up."""
    if not samples:
        return {"available": False}
    series, dropped = [], {}
    t0 = samples[0]["t"]
    for prev, cur in zip(samples, samples[1:]):
        dt = cur["t"] - prev["t"]
        cpu = None
        if cur.get("cpu_seconds") is not None and prev.get("cpu_seconds") is not None and dt > 0:
            step = cur["cpu_seconds"] - prev["cpu_seconds"]
            cpu = round(step / dt, 3) if step >= 0 else None
        series.append({"t_s": round(cur["t"] - t0, 2), "cpu_cores": cpu, "rss_bytes": cur.get("rss_bytes")})
        for reason, value in (cur.get("dropped") or {}).items():
            before = (prev.get("dropped") or {}).get(reason, 0)
            dropped[reason] = dropped.get(reason, 0) + (value - before if value >= before else value)
    rss = [s["rss_bytes"] for s in samples if s.get("rss_bytes")]
    cpus = [s["cpu_cores"] for s in series if s["cpu_cores"] is not None]
    out: dict[str, Any] = {
        "available": True, "dropped": dropped,
        "cpu_cores_avg": round(sum(cpus) / len(cpus), 3) if cpus else None,
        "cpu_cores_max": max(cpus) if cpus else None,
        "rss_start_bytes": rss[0] if rss else None, "rss_end_bytes": rss[-1] if rss else None,
        "rss_max_bytes": max(rss) if rss else None,
        "rss_slope_kib_per_min_after_warmup": _slope_after(series, spec.warmup()),  # the series starts with publishing
        "series": series,
    }
    last = samples[-1]
    for key in ("slow_consumer_closes", "backpressure_notices"):
        if key in last:
            out[key] = last[key]
    return out


def _slope_after(series: list[dict[str, Any]], after_s: float) -> float | None:
    """Least-squares slope of RSS over the samples after `after_s` (KiB per minute)."""
    points = [(s["t_s"], s["rss_bytes"]) for s in series if s["t_s"] >= after_s and s.get("rss_bytes")]
    if len(points) < 3:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    slope = sum((t - mean_t) * (r - mean_r) for t, r in points) / var  # bytes per second
    return round(slope * 60 / 1024, 1)
