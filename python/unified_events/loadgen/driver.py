"""What `unified-events bench` does with its arguments: one run, or a named scenario, against a
given URL or a server the harness starts, optionally side by side with the baseline."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Callable
from typing import Any

from . import scenarios
from .procstat import is_loopback_url
from .report import format_comparison, format_summary
from .run import RunSpec, run_load
from .servers import SpawnedServer


class RefusedTarget(Exception):
    pass


def guard(urls: list[str | None], allow_remote: bool) -> None:
    """A load test is an attack on whoever runs the target: loopback only, unless asked."""
    if allow_remote:
        return
    for url in urls:
        if url and not is_loopback_url(url):
            raise RefusedTarget(f"{url} is not a loopback address; pass --allow-remote to load-test another host")


async def run_on(kind: str, spec_kwargs: dict[str, Any], server_settings: dict[str, Any],
                 say: Callable[[str], None], progress: bool) -> dict[str, Any]:
    """Start a fresh server of `kind`, run one load against it, stop it."""
    server = SpawnedServer(kind, server_settings)
    try:
        await server.start()
        kwargs = dict(spec_kwargs)
        if kind == "baseline":
            kwargs["publish_via"] = "ws"  # the baseline has no HTTP API
            kwargs["patterns"] = False
        spec = RunSpec(ws_url=server.ws_url, http_url=server.http_url, server_pid=server.pid, **kwargs)
        say(f"  [{kind}] server pid {server.pid} on {server.ws_url}")
        result = await run_load(spec, restart=server.restart, progress=progress, server_pid=lambda: server.pid)
        result["target"] = {"kind": kind, "spawned": True, "ws_url": server.ws_url, "http_url": server.http_url}
        result["server"]["exit_code"] = await server.stop()
        return result
    except BaseException:
        say(f"  [{kind}] server log tail:\n{server.log_tail()}")
        raise
    finally:
        server.cleanup()


def _attach_comparison(ours: dict[str, Any], base: dict[str, Any]) -> None:
    a, b = ours["delivery"]["delivered_per_s"], base["delivery"]["delivered_per_s"]
    ours["comparison"] = {
        "baseline_delivered_per_s": b,
        "deliveries_ratio": round(a / b, 3) if b else None,
        "baseline_p99_ms": base["latency_ms"]["p99"],
        "baseline_missing": base["delivery"]["missing"],
        "baseline_server_cpu_us_per_delivery": base["delivery"].get("server_cpu_us_per_delivery"),
    }


async def run_steps(steps: list[tuple[str, dict[str, Any]]], *, url: str | None, http_url: str | None,
                    spawn: bool, compare: bool, server_settings: dict[str, Any], targets: dict[str, Any],
                    say: Callable[[str], None], progress: bool) -> list[dict[str, Any]]:
    results = []
    for name, kwargs in steps:
        say(f"step {name}: {_describe(kwargs)}")
        if spawn or compare:
            result = await run_on("unified", kwargs, server_settings, say, progress)
        else:
            assert url is not None
            spec = RunSpec(ws_url=url, http_url=http_url, **kwargs)
            result = await run_load(spec, progress=progress)
            result["target"] = {"kind": "given", "spawned": False, "ws_url": url, "http_url": http_url}
        result["step"] = name
        say(format_summary(result, f"== {name}: unified-events"))
        if compare:
            base = await run_on("baseline", kwargs, server_settings, say, progress)
            base["step"] = name
            say(format_summary(base, f"== {name}: websockets baseline"))
            _attach_comparison(result, base)
            result["baseline"] = base
            say(f"== {name}: unified-events vs baseline\n{format_comparison(result, base)}")
        if targets:
            result["targets"] = scenarios.check_targets(targets, result)
            for check in result["targets"]:
                verdict = "MET" if check["met"] else "NOT MET"
                say(f"  target {check['target']} {check['threshold']}: {check['value']} -> {verdict}")
        results.append(result)
    return results


def _describe(kwargs: dict[str, Any]) -> str:
    keys = ("connections", "duration_s", "publish_rate", "topics", "patterns", "publish_via", "restart_at_s")
    return ", ".join(f"{k}={kwargs[k]}" for k in keys if k in kwargs)


def environment() -> dict[str, Any]:
    from .. import __version__

    info: dict[str, Any] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                            "python": platform.python_version(), "platform": platform.platform(),
                            "unified_events": __version__}
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else None
    except OSError:
        pass
    try:
        from .. import _core

        info["core_build"] = "debug" if _is_debug_build(_core.__file__) else "release"
    except Exception:
        info["core_build"] = "unknown"
    return info


def _is_debug_build(path: str | None) -> bool:
    """A Rust debug build carries debug-assertion symbols; benchmarks on one are 2-3x slower."""
    if not path:
        return False
    with open(path, "rb") as f:
        data = f.read()
    return b"precondition_check" in data or b"ub_checks" in data


def main(steps: list[tuple[str, dict[str, Any]]], **kw: Any) -> list[dict[str, Any]]:
    import uvloop

    def say(text: str) -> None:
        print(text, flush=True)

    return uvloop.run(run_steps(steps, say=say, **kw))
