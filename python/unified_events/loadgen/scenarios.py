"""Named scenarios: `bench/scenarios/<name>.toml`, each a list of steps (one load run each).

A scenario file holds `description`, optionally `spawn = true` (the harness starts a fresh server
per step; required for restarts), a `[server]` table of settings for that server, `[defaults]`
for every step, `[[steps]]` (RunSpec fields, plus `name`, `short` overrides and `skip_in_short`), `[short]` overrides used by
`make bench`, and `[targets]` checked against each step's result (see TARGETS).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .run import RunSpec

SPEC_FIELDS = {f.name for f in dataclasses.fields(RunSpec)}


def scenario_dir() -> Path | None:
    here = Path(__file__).resolve()
    for root in (Path.cwd(), *here.parents):
        candidate = root / "bench" / "scenarios"
        if candidate.is_dir():
            return candidate
    return None


def available() -> list[str]:
    folder = scenario_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder else []


def load(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        folder = scenario_dir()
        if folder is None:
            raise FileNotFoundError("bench/scenarios not found: run from a source checkout or pass a .toml path")
        path = folder / f"{name_or_path}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no scenario {name_or_path!r} (have: {', '.join(available()) or 'none'})")
    data = tomllib.loads(path.read_text())
    data.setdefault("name", path.stem)
    for step in data.get("steps", []):
        unknown = set(step) - SPEC_FIELDS - {"name", "short", "skip_in_short"}
        if unknown:
            raise ValueError(f"scenario {path.stem}: unknown step keys {sorted(unknown)} (allowed: {sorted(SPEC_FIELDS)})")
    return data


def step_specs(scenario: dict[str, Any], short: bool, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(step name, RunSpec keyword arguments) for each step: defaults < step < short < base."""
    out = []
    for i, step in enumerate(scenario.get("steps") or [{}]):
        if short and step.get("skip_in_short"):
            continue
        merged = {**scenario.get("defaults", {}), **step}
        if short:
            merged.update(scenario.get("short", {}))
            merged.update(step.get("short", {}) if isinstance(step.get("short"), dict) else {})
        merged.update(base)
        name = str(merged.pop("name", f"step{i + 1}"))
        merged.pop("short", None)
        merged.pop("skip_in_short", None)
        if merged.get("publish_rate") == "max":
            merged["publish_rate"] = math.inf
        out.append((name, merged))
    return out


# Target name -> (what is measured, how it passes). Each reads one step's result.
TARGETS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[Any, Any], bool]]] = {
    "max_p99_ms": (lambda r: r["latency_ms"]["p99"], lambda v, t: v <= t),
    "max_missing": (lambda r: r["delivery"]["missing"], lambda v, t: v <= t),
    "max_duplicates": (lambda r: r["delivery"]["duplicates"], lambda v, t: v <= t),
    "max_bytes_per_connection": (lambda r: r.get("connections", {}).get("server_bytes_per_connection"),
                                 lambda v, t: v is not None and v <= t),
    "min_connected": (lambda r: r.get("connections", {}).get("connected"), lambda v, t: v >= t),
    "max_rss_slope_kib_per_min": (lambda r: r["server"].get("rss_slope_kib_per_min_after_warmup"),
                                  lambda v, t: v is not None and v <= t),
    "min_ratio_vs_baseline": (lambda r: (r.get("comparison") or {}).get("deliveries_ratio"),
                              lambda v, t: v is not None and v >= t),
    "min_delivered_ratio": (lambda r: r["delivery"]["delivered_per_s"] / r["delivery"]["offered_deliveries_per_s"]
                            if r["delivery"]["offered_deliveries_per_s"] else None,
                            lambda v, t: v is not None and v >= t),
}


def check_targets(targets: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for name, threshold in targets.items():
        if name not in TARGETS:
            checks.append({"target": name, "threshold": threshold, "value": None, "met": False,
                           "note": "unknown target"})
            continue
        measure, passes = TARGETS[name]
        try:
            value = measure(result)
        except (KeyError, TypeError, ZeroDivisionError):
            value = None
        met = value is not None and passes(value, threshold)
        checks.append({"target": name, "threshold": threshold, "value": value, "met": bool(met)})
    return checks
