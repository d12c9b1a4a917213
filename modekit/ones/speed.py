"""OneS's inference speed: a routed sparse teacher against its dense student, timed with
torch.utils.benchmark, with the teacher / student FLOP ratio as the bound a speedup can reach."""

from __future__ import annotations

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from modekit.data import load
from modekit.device import resolve_device
from modekit.nn import build_model, moe_layers
from modekit.ones.experiment import teacher_config
from modekit.ones.gathering import make_student


def set_sparse_inference(model: torch.nn.Module, enabled: bool = True) -> torch.nn.Module:
    for _, layer in moe_layers(model):
        layer.sparse_inference = enabled
    return model


def count_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one eval forward pass on x (attention included: MHA's fused fast path is turned off)."""
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops()


def _seconds_per_call(model, x: torch.Tensor, min_run_time: float) -> float:
    """Median seconds of one eval forward pass (torch.utils.benchmark: warm-up, blocks, device sync)."""
    import torch.utils.benchmark as benchmark  # imported here: importing it warns on a machine without CUDA

    timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=torch.get_num_threads())
    with torch.no_grad():
        return timer.blocked_autorange(min_run_time=min_run_time).median


def inference_speed(
    teacher,
    student,
    example: torch.Tensor,
    batch_sizes=(1, 32, 256, 1024),
    device: str = "auto",
    seconds: float = 0.5,
    rounds: int = 5,
) -> pd.DataFrame:
    """Samples/s of teacher (sparse routed inference) and student, eval mode, one row per batch x
    round: each round times the teacher then the student (torch.utils.benchmark medians of blocks of
    calls, `seconds / rounds` each), so a round's speedup is a paired replicate. `flop_ratio_bound`
    is the teacher / student FLOP ratio, the most a speedup can be without dispatch effects."""
    dev = resolve_device(device)
    teacher = set_sparse_inference(teacher, True).to(dev).eval()
    student = student.to(dev).eval()
    rows = []
    for batch in batch_sizes:
        x = example[torch.arange(batch) % len(example)].to(dev)
        bound = count_flops(teacher, x) / count_flops(student, x)
        for round_ in range(rounds):
            teacher_s, student_s = (_seconds_per_call(m, x, seconds / rounds) for m in (teacher, student))
            speeds = {"teacher_samples_per_s": batch / teacher_s, "student_samples_per_s": batch / student_s}
            rows.append({"device": dev.type, "batch": batch, "round": round_, **speeds, "speedup": teacher_s / student_s,
                         "flop_ratio_bound": bound})  # fmt: skip
    set_sparse_inference(teacher, False)
    return pd.DataFrame(rows)


def speed_summary(speed: pd.DataFrame) -> pd.DataFrame:
    """Per batch: median samples/s and speedup over rounds, the speedup's range, and the FLOP bound."""
    grouped = speed.groupby(["device", "batch"])
    summary = grouped[["teacher_samples_per_s", "student_samples_per_s", "speedup", "flop_ratio_bound"]].median()
    return summary.assign(speedup_min=grouped.speedup.min(), speedup_max=grouped.speedup.max(), rounds=grouped.size()).reset_index()


def ones_bench(device: str = "auto", batch_sizes=(1, 32, 256, 1024)) -> list[dict]:
    """OneS inference speed: a top-2 of 4 experts text-transformer teacher (routed inference) vs its
    SVD-gathered dense student (same shapes as the synthetic text task), eval mode."""
    data = load("synthtext", n_samples=400)
    teacher = build_model(teacher_config(data), seed=0)
    student = make_student(teacher, "svd")
    table = speed_summary(inference_speed(teacher, student, data.X_test, batch_sizes, device))
    return [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in table.to_dict("records")]
