"""The results table of bench/README.md, built from the JSON reports `make bench` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def headline(result: dict[str, Any]) -> str:
    """The one or two numbers a step is about."""
    conns, dlv, lat = result.get("connections", {}), result["delivery"], result["latency_ms"]
    parts = [f"{_f(conns.get('connected'))}/{_f(conns.get('requested'))} connected"]
    if result["publishing"]["publishers"]:
        parts.append(f"{_f(dlv['delivered_per_s'], 0)} deliveries/s of {_f(dlv['offered_deliveries_per_s'], 0)} offered")
        parts.append(f"p50/p99/max {lat['p50']}/{lat['p99']}/{lat['max']} ms")
        parts.append(f"{_f(dlv['missing'])} missing")
        if dlv.get("server_cpu_us_per_delivery"):
            parts.append(f"{dlv['server_cpu_us_per_delivery']} µs server CPU/delivery")
    elif conns.get("server_bytes_per_connection") is not None:
        parts.append(f"{conns['server_bytes_per_connection'] / 1024:.1f} KiB server memory/connection")
    comparison = result.get("comparison")
    if comparison:
        parts.append(f"baseline {_f(comparison['baseline_delivered_per_s'], 0)}/s "
                     f"-> **{comparison['deliveries_ratio']}x**")
    slope = result["server"].get("rss_slope_kib_per_min_after_warmup")
    if slope is not None and result["spec"]["duration_s"] >= 30:
        parts.append(f"RSS slope {slope} KiB/min after warm-up")
    if "restart" in result:
        parts.append(f"restart: down {result['restart']['downtime_s']} s")
    parts.append(f"other load {result['cpu_cores']['other']:.2f} cores")
    return "; ".join(parts)


def markdown(paths: list[Path]) -> str:
    lines = ["| scenario | step | result | targets |", "|---|---|---|---|"]
    for path in sorted(paths):
        report = orjson.loads(path.read_bytes())
        for result in report["results"]:
            targets = ", ".join(f"{c['target']} {c['threshold']}: {'met' if c['met'] else '**NOT MET**'}"
                                for c in result.get("targets", [])) or "-"
            lines.append(f"| {report['scenario']} | {result['step']} | {headline(result)} | {targets} |")
    return "\n".join(lines)
