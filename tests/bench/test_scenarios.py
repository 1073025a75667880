"""Scenario files, spawned servers, the baseline comparison and a restart, end to end (short runs)."""

from __future__ import annotations

from pathlib import Path

from unified_events.loadgen import scenarios

from .test_harness import bench


def write_scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_the_shipped_scenarios_parse_and_have_short_versions() -> None:
    names = scenarios.available()
    assert {"connections", "throughput", "latency", "soak", "recovery", "fanout-wide"} <= set(names)
    for name in names:
        scenario = scenarios.load(name)
        assert scenario.get("description") and scenario.get("targets")
        for _, kwargs in scenarios.step_specs(scenario, short=True, base={}):
            assert kwargs["duration_s"] <= 90
        for target in scenario["targets"]:
            assert target in scenarios.TARGETS


def test_a_scenario_against_a_spawned_server_and_the_baseline(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, """
description = "tiny comparison"
spawn = true
compare_baseline = true
[defaults]
connections = 6
publish_rate = 30
duration_s = 1.5
[[steps]]
name = "six"
[targets]
max_missing = 0
min_ratio_vs_baseline = 1000.0
""")
    code, report, output = bench(tmp_path, "--scenario", str(path))
    assert code == 0, output  # a missed target is reported, not an error (without --strict)
    assert report is not None and report["scenario"] == "tiny"
    result = report["results"][0]
    baseline = result["baseline"]
    assert result["target"]["spawned"] and baseline["target"]["kind"] == "baseline"
    assert result["delivery"]["missing"] == 0 and baseline["delivery"]["missing"] == 0
    assert baseline["delivery"]["delivered"] == baseline["delivery"]["expected_deliveries"] > 0
    assert result["comparison"]["deliveries_ratio"] is not None
    verdicts = {c["target"]: c["met"] for c in result["targets"]}
    assert verdicts == {"max_missing": True, "min_ratio_vs_baseline": False}
    assert "NOT MET" in output



def test_strict_turns_a_missed_target_into_exit_code_1(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, """
description = "a target nothing can meet"
spawn = true
[defaults]
connections = 2
publish_rate = 10
duration_s = 1
[targets]
max_missing = -1
""")
    code, _, output = bench(tmp_path, "--scenario", str(path))
    assert code == 0, output
    code, _, output = bench(tmp_path, "--scenario", str(path), "--strict")
    assert code == 1 and "1 target(s) not met" in output


def test_a_restart_mid_run_is_accounted_for(tmp_path: Path) -> None:
    # Whether events survive the restart depends on the server's durable log; what must hold here
    # is the harness's accounting: every subscriber reconnected and every expected delivery is
    # either delivered or counted as missing.
    path = write_scenario(tmp_path, """
description = "tiny restart"
spawn = true
[defaults]
connections = 4
topics = 2
publish_rate = 40
publish_via = "http"
reconnect = true
duration_s = 3
restart_at_s = 1.5
""")
    code, report, output = bench(tmp_path, "--scenario", str(path))
    assert code == 0, output
    assert report is not None
    result = report["results"][0]
    delivery = result["delivery"]
    assert result["restart"]["downtime_s"] > 0
    assert delivery["reconnects"] >= 4
    assert delivery["delivered"] - delivery["duplicates"] + delivery["missing"] == delivery["expected_deliveries"]
    assert result["publishing"]["publisher_stats"][0]["unsent"] == 0
