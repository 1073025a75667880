"""`unified-events bench`: load-test a server (this one, or yours) and report what it held."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

NAME = "bench"

_DEFAULT_WS = "ws://127.0.0.1:8788/events"
_DEFAULT_HTTP = "http://127.0.0.1:8787"


def duration(text: str) -> float:
    """'60s', '2m', '500ms', '1h' or plain seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 60s, 2m, 500ms)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match[2]]
    return float(match[1]) * scale


def rate(text: str) -> float:
    if text == "max":
        return math.inf
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("the rate must be >= 0 (or 'max')")
    return value


def add_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        NAME, help="load-test a server: connections, deliveries/s, latency, gaps",
        description="Open N WebSocket subscribers (picows, over K processes), publish numbered events at a "
                    "given rate, and report connect rate, offered vs delivered deliveries/s, latency "
                    "percentiles, gaps and duplicates per subscriber, server drops, CPU and memory. "
                    "Stops by itself after --duration. Loopback targets only unless --allow-remote.",
    )
    target = bench.add_argument_group("target")
    target.add_argument("--url", help=f"WebSocket endpoint of the server (default {_DEFAULT_WS})")
    target.add_argument("--http-url", help="HTTP base URL, for /metrics and --publish-via http "
                                           f"(default {_DEFAULT_HTTP} when --url is the default port 8788)")
    target.add_argument("--token", help="auth token for subscribers and publishers")
    target.add_argument("--allow-remote", action="store_true", help="allow a target that is not loopback")
    target.add_argument("--spawn-server", action="store_true",
                        help="start a fresh unified-events server on free loopback ports for each run")
    target.add_argument("--compare-baseline", action="store_true",
                        help="also run the same load against bench/baseline_server.py and print the ratio")
    load = bench.add_argument_group("load")
    load.add_argument("--connections", type=int, help="subscriber connections (default 100)")
    load.add_argument("--duration", type=duration, help="publishing time, e.g. 60s (default 10s)")
    load.add_argument("--warmup", type=duration, help="excluded from rates and latency (default duration/5, ≤5 s)")
    load.add_argument("--topics", type=int, help="topics; subscriber i follows topic i mod N")
    load.add_argument("--patterns", action="store_true", help="subscribe with one wildcard covering all topics")
    load.add_argument("--publish-rate", type=rate,
                      help="events/s over all publishers; 0 = idle connections; 'max' = closed loop (default 100)")
    load.add_argument("--payload-bytes", type=int, help="payload size (default 200)")
    load.add_argument("--publishers", type=int, help="publisher connections (default 1)")
    load.add_argument("--publish-via", choices=("ws", "http"), help="publish over (default ws)")
    load.add_argument("--processes", type=int, help="subscriber processes (default 2)")
    load.add_argument("--connect-rate", type=float, help="new connections/s (default 2000)")
    load.add_argument("--latency-every", type=int, help="time every k-th connection (default 1: all)")
    load.add_argument("--reconnect", action="store_true", help="reconnect dropped subscribers with lastEventId")
    runs = bench.add_argument_group("scenarios and output")
    runs.add_argument("--scenario", help="run a named scenario from bench/scenarios/ (or a .toml path)")
    runs.add_argument("--short", action="store_true", help="with --scenario: the short version (make bench)")
    runs.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    runs.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    runs.add_argument("--quiet", action="store_true", help="no live progress line")
    runs.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown results table of these "
                                                                  "reports (bench/README.md) and exit")
    runs.add_argument("--strict", action="store_true", help="exit 1 when a scenario target is not met")


# RunSpec field -> (argparse dest, default when neither the command line nor a scenario sets it).
_LOAD_OPTIONS = {
    "connections": ("connections", 100), "duration_s": ("duration", 10.0), "warmup_s": ("warmup", None),
    "topics": ("topics", 1), "patterns": ("patterns", False), "publish_rate": ("publish_rate", 100.0),
    "payload_bytes": ("payload_bytes", 200), "publishers": ("publishers", 1), "publish_via": ("publish_via", "ws"),
    "processes": ("processes", 2), "connect_rate": ("connect_rate", 2000.0), "latency_every": ("latency_every", 1),
    "reconnect": ("reconnect", False), "token": ("token", None),
}


def _load_options(args: argparse.Namespace, with_defaults: bool) -> dict[str, Any]:
    """The load options given on the command line; with defaults for a plain run, without for a
    scenario (whose steps then keep their own values for everything not given)."""
    out = {}
    for field, (dest, default) in _LOAD_OPTIONS.items():
        value = getattr(args, dest)
        if value is not None and value is not False:
            out[field] = value
        elif with_defaults:
            out[field] = default
    return out


def _http_default(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.port == 8788:
        return f"http://{parts.hostname}:8787"
    return None


def run(args: argparse.Namespace) -> int:
    from ..loadgen import driver, scenarios

    if args.table:
        from ..loadgen.table import markdown

        print(markdown([Path(p) for p in args.table]))
        return 0
    if args.list_scenarios:
        for name in scenarios.available():
            print(f"{name:14} {scenarios.load(name).get('description', '')}")
        return 0
    url = args.url or _DEFAULT_WS
    http_url = args.http_url or _http_default(url)
    spawn, compare, settings, targets = args.spawn_server, args.compare_baseline, {}, {}
    title = "bench"
    try:
        if args.scenario:
            scenario = scenarios.load(args.scenario)
            steps = scenarios.step_specs(scenario, args.short, _load_options(args, with_defaults=False))
            spawn = spawn or bool(scenario.get("spawn")) or args.url is None
            compare = compare or bool(scenario.get("compare_baseline"))
            settings, targets = scenario.get("server", {}), scenario.get("targets", {})
            title = scenario["name"]
        else:
            steps = [("run", _load_options(args, with_defaults=True))]
        if not spawn and not compare:
            driver.guard([url, http_url], args.allow_remote)
        env = driver.environment()
        if env.get("core_build") == "debug" and (spawn or compare):
            print("warning: the Rust core is a debug build (2-3x slower); run `make build-prod` first",
                  file=sys.stderr)
        results = driver.main(steps, url=None if spawn else url, http_url=None if spawn else http_url,
                              spawn=spawn, compare=compare, server_settings=settings, targets=targets,
                              progress=not args.quiet)
    except driver.RefusedTarget as exc:
        print(f"unified-events bench: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"unified-events bench: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the target refused or broke the run: say what, without a traceback
        print(f"unified-events bench: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    report = {"scenario": title, "short": bool(args.short), "environment": env, "results": results}
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        print(f"wrote {path}")
    failed = [c for r in results for c in r.get("targets", []) if not c["met"]]
    if failed:
        print(f"{len(failed)} target(s) not met: " + ", ".join(f"{c['target']} ({c['value']})" for c in failed))
    return 1 if failed and args.strict else 0

