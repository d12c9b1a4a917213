"""The train-step bench: every configuration measured, figures positive, ratios consistent."""

import math

from modekit.bench import format_bench, run_bench


def test_bench_measures_every_configuration():
    report = run_bench("cpu", populations=(2,), batch=64, repeats=2)
    speeds = report["samples_per_second"]
    assert set(speeds) == {"reference_loop", "stacked", "population_k2_vectorised", "population_k2_one_by_one"}
    assert all(math.isfinite(v) and v > 0 for v in speeds.values())
    ratio = report["ratios"]["stacked_over_reference"]
    assert abs(ratio - speeds["stacked"] / speeds["reference_loop"]) < 0.01
    assert "stacked_over_reference" in format_bench(report) and report["batch"] == 64


def test_workers_bench_reports_both_pools_and_checks_their_tables():
    from modekit.bench import format_bench, workers_bench

    report = workers_bench(workers=(1, 2), models=2, epochs=1, dataset="wine")
    assert set(report["models_per_second"]) == {"1", "2"} and all(v > 0 for v in report["models_per_second"].values())
    assert report["tables_identical"] is True and report["speedup"]["2_over_1"] > 0
    assert "models/s" in format_bench({"workers": report})
