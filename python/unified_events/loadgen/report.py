"""The person-readable summary of a run (the JSON report holds everything, this the essentials)."""

from __future__ import annotations

from typing import Any


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    if isinstance(value, (int, float)):
        return f"{round(value):,}"
    return str(value)


def _mib(value: Any) -> str:
    return "-" if not value else f"{value / 2**20:,.1f} MiB"


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    spec, conns = result["spec"], result.get("connections", {})
    pub, dlv, lat = result["publishing"], result["delivery"], result["latency_ms"]
    server, cpu = result["server"], result["cpu_cores"]
    rows = [
        ("connections", f"{_n(conns.get('connected'))}/{_n(conns.get('requested'))} connected, "
                        f"{_n(conns.get('failed'))} failed, {_n(conns.get('connect_rate_per_s'))}/s over "
                        f"{_n(conns.get('ramp_s'), 2)} s"),
    ]
    if conns.get("server_bytes_per_connection") is not None:
        rows.append(("server memory per connection",
                     f"{conns['server_bytes_per_connection'] / 1024:,.2f} KiB "
                     f"({_mib(conns.get('server_rss_idle_bytes'))} idle -> "
                     f"{_mib(conns.get('server_rss_connected_bytes'))} connected)"))
    if pub["publishers"]:
        offered = "as fast as deliveries return (closed loop)" if pub["closed_loop"] \
            else f"{_n(pub['offered_events_per_s'])} events/s offered"
        rows += [
            ("publishing", f"{pub['publishers']} over {pub['via']}, {offered}, {_n(pub['events_published'])} sent"),
            ("deliveries/s", f"{_n(dlv['delivered_per_s'])} delivered of {_n(dlv['offered_deliveries_per_s'])} "
                             f"offered (window {dlv['window_s']:.1f} s)"
                             + (f", server CPU {dlv['server_cpu_us_per_delivery']} µs/delivery"
                                if dlv.get("server_cpu_us_per_delivery") else "")),
            ("delivered in total", f"{_n(dlv['delivered'])} of {_n(dlv['expected_deliveries'])} expected "
                                   f"(drain {dlv['drain']['drain_s']} s)"),
            ("gaps", f"{_n(dlv['missing'])} missing events, {_n(dlv['subscribers_with_gaps'])} subscribers with gaps"
                     f" (worst {_n(dlv['max_missing_per_subscriber'])}), {_n(dlv['duplicates'])} duplicates"
                     + (f"; {_n(dlv['subscribers_never_connected'])} subscribers never connected"
                        if dlv.get("subscribers_never_connected") else "")),
            ("latency ms" + (" (queueing)" if lat["queueing_only"] else ""),
             f"p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  p99.9 {lat['p99_9']}  max {lat['max']}"
             f"  ({_n(lat['count'])} frames timed)"),
        ]
        send_lag = pub.get("send_lag_ms")
        if send_lag and not pub["closed_loop"]:
            rows.append(("  of which publisher lag", f"p50 {send_lag['p50']}  p99 {send_lag['p99']}  max "
                                                     f"{send_lag['max']} (event handed out after its due time)"))
    if dlv.get("disconnects") or dlv.get("reconnects"):
        rows.append(("disconnects / reconnects", f"{_n(dlv['disconnects'])} / {_n(dlv['reconnects'])}"))
    if "restart" in result:
        restart = result["restart"]
        rows.append(("server restart", f"{restart.get('signal', 'SIGTERM')} at {restart['at_s']} s, "
                                       f"down {restart['downtime_s']} s"))
    if server.get("available"):
        dropped = ", ".join(f"{k} {_n(v)}" for k, v in server["dropped"].items()) or "not reported"
        rows += [
            ("server drops", dropped),
            ("server CPU cores", f"avg {_n(server['cpu_cores_avg'], 2)}, max {_n(server['cpu_cores_max'], 2)}"),
            ("server RSS", f"{_mib(server['rss_start_bytes'])} -> {_mib(server['rss_end_bytes'])} "
                           f"(max {_mib(server['rss_max_bytes'])})"
                           # a slope over a few seconds says nothing about leaks: soak runs only
                           + (f"; slope after warm-up {_n(server['rss_slope_kib_per_min_after_warmup'], 1)} KiB/min"
                              if spec["duration_s"] >= 30 else "")),
        ]
    else:
        rows.append(("server", "not observable (no /metrics and no local pid)"))
    rows.append(("CPU cores in window", f"server {cpu.get('server', 0):.2f}, subscribers {cpu.get('clients', 0):.2f}, "
                                        f"harness {cpu.get('harness', 0):.2f}, machine busy {cpu['machine_busy']:.2f} "
                                        f"of {result['machine']['cores']}, other {cpu['other']:.2f}"))
    return rows


def format_summary(result: dict[str, Any], title: str = "") -> str:
    rows = summary_rows(result)
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def format_comparison(ours: dict[str, Any], base: dict[str, Any]) -> str:
    """Side by side: the same scenario against unified-events and the websockets baseline."""
    def pick(r: dict[str, Any]) -> dict[str, Any]:
        return {"deliveries/s": r["delivery"]["delivered_per_s"], "p50 ms": r["latency_ms"]["p50"],
                "p99 ms": r["latency_ms"]["p99"], "max ms": r["latency_ms"]["max"],
                "missing": r["delivery"]["missing"], "server CPU cores": r["cpu_cores"].get("server"),
                "server µs/delivery": r["delivery"].get("server_cpu_us_per_delivery")}
    a, b = pick(ours), pick(base)
    lines = [f"  {'':18} {'unified-events':>16} {'baseline':>16} {'ratio':>8}"]
    for key in a:
        ratio = f"{a[key] / b[key]:.2f}x" if isinstance(a[key], (int, float)) and b[key] else "-"
        lines.append(f"  {key:18} {_n(a[key], 2):>16} {_n(b[key], 2):>16} {ratio:>8}")
    return "\n".join(lines)
