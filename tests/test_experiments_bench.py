"""The train-step bench: every configuration measured, figures positive, ratios and shares consistent."""

import math
import os

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from modekit.experiments.bench import SHAPES, format_bench, run_bench, step_flops
from modekit.training import compiled

EAGER = {"reference loop (eager)", "stacked (eager)"}


def test_bench_measures_every_configuration():
    report = run_bench("cpu", populations=(2,), batch=64, repeats=2, shapes=("letter",), batches=(32,), compile=False)
    speeds = report["samples_per_second"]
    assert set(speeds) == {"population_k2_vectorised", "population_k2_one_by_one"}
    assert all(math.isfinite(v) and v > 0 for v in speeds.values())
    rows = {row["configuration"]: row for row in report["steps"]}
    assert set(rows) == EAGER and report["compilations"] == []
    rate = report["matmul"]["flop_per_s"]
    for row in rows.values():
        assert (
            row["samples_per_s"] > 0
            and abs(row["share_of_matmul"] - step_flops(SHAPES["letter"], 32) / row["seconds_per_step"] / rate) < 1e-9
        )
    ratio = report["ratios"]["letter_b32_stacked_over_reference"]
    assert abs(ratio - rows["reference loop (eager)"]["seconds_per_step"] / rows["stacked (eager)"]["seconds_per_step"]) < 0.01
    text = format_bench(report)
    assert "letter_b32_stacked_over_reference" in text and "GFLOP/s" in text and report["batch"] == 64


def test_step_flops_count_three_forward_passes():
    # letter, one sample: gate 16*4 + experts 4*(16*64 + 64*64) + tower 64*26 multiply-adds
    assert step_flops(SHAPES["letter"], 1) == 3 * 2 * (16 * 4 + 4 * (16 * 64 + 64 * 64) + 64 * 26)


def test_bench_times_the_compiled_step_and_its_payoff(monkeypatch, tmp_path):
    counter = CompileCounter()  # dynamo's counting backend: the bench's compiled path without inductor's ~20 s
    cache_dirs = []  # the kernel cache each compilation saw, and whether it was empty

    def counted(f):
        cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "")
        cache_dirs.append((cache, os.path.isdir(cache) and not os.listdir(cache)))
        return torch.compile(f, backend=counter, dynamic=False, fullgraph=True)

    monkeypatch.setattr(compiled, "_compile", counted)
    compiled.clear_cache()
    users_cache = tmp_path / "kernels"  # a cache of earlier runs: the bench compiles beside it, and leaves it set
    users_cache.mkdir()
    (users_cache / "earlier-kernel.so").write_bytes(b"")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(users_cache))
    report = run_bench("cpu", populations=(), repeats=2, shapes=("letter",), batches=(16,))
    assert [empty for _, empty in cache_dirs] == [True] and cache_dirs[0][0] != str(users_cache)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(users_cache) and os.listdir(users_cache) == ["earlier-kernel.so"]
    assert {row["configuration"] for row in report["steps"]} == EAGER | {"stacked (compiled)"} and counter.frame_count == 1
    (payoff,) = report["compilations"]
    assert payoff["compile_seconds"] > 0 and payoff["pays_off_after_models"] > 0
    assert "pays off after" in format_bench(report) and "letter_b16_compiled_over_eager" in report["ratios"]


@pytest.mark.slow
def test_workers_bench_reports_both_pools_and_checks_their_tables():
    from modekit.experiments.bench import format_bench, workers_bench

    report = workers_bench(workers=(1, 2), models=2, epochs=1, dataset="wine")
    assert set(report["models_per_second"]) == {"1", "2"} and all(v > 0 for v in report["models_per_second"].values())
    assert report["tables_identical"] is True and report["speedup"]["2_over_1"] > 0
    assert "models/s" in format_bench({"workers": report})
