"""DDP's training step against one process at the same global batch (docs/scaling.md).

    python benchmarks/ddp_step.py [--batches 128,2048] [--steps 40]

One run measures, at the bench shape (modekit.experiments.bench: 54 features, 4 experts of hidden 128, 7
classes) and for each global batch: one process with one thread, one process with two threads,
and 2 DDP ranks (gloo, one thread each, each on half of the global batch). A step is forward,
losses, backward (with DDP's gradient all-reduce) and AdamW. Each figure is the median of 3 timed
blocks of --steps steps after warm-up; the ranks meet at a barrier around each block.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from modekit.config import ModelConfig, TrainConfig
from modekit.experiments.bench import BENCH_SHAPE
from modekit.nn import build_model
from modekit.training.loop import make_optimizer
from modekit.training.objectives import mode_loss

WARMUP, BLOCKS = 5, 3


def training_step(model, batch: int, seed: int = 0):
    optimizer = make_optimizer(model.parameters(), TrainConfig(), torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, BENCH_SHAPE["n_features"], generator=generator)
    y = torch.randint(0, BENCH_SHAPE["n_classes"], (batch,), generator=generator)

    def step():
        loss = mode_loss(model(x), y, 0.1, 0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()

    return step


def seconds_per_step(step, steps: int, barrier=lambda: None) -> float:
    for _ in range(WARMUP):
        step()
    blocks = []
    for _ in range(BLOCKS):
        barrier()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        barrier()
        blocks.append((time.perf_counter() - start) / steps)
    return statistics.median(blocks)


def one_process(batch: int, steps: int, threads: int) -> float:
    torch.set_num_threads(threads)
    return seconds_per_step(training_step(build_model(ModelConfig(**BENCH_SHAPE), 0), batch), steps)


def ddp_rank(rank: int, world: int, address: str, batch: int, steps: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=world)
    try:
        model = DistributedDataParallel(build_model(ModelConfig(**BENCH_SHAPE), 0))
        seconds = seconds_per_step(training_step(model, batch // world, seed=rank), steps, dist.barrier)
        if rank == 0:
            Path(out).write_text(repr(seconds))
    finally:
        dist.destroy_process_group()


def ddp(batch: int, steps: int, world: int = 2) -> float:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "seconds")
        mp.spawn(ddp_rank, args=(world, f"tcp://127.0.0.1:{port}", batch, steps, out), nprocs=world)
        return float(Path(out).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="128,2048", help="comma-separated global batch sizes")
    parser.add_argument("--steps", type=int, default=40, help="steps per timed block")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}  ({os.cpu_count()} CPUs, torch {torch.__version__})")
    header = f"{'global batch':>12} {'1 process, 1 thread':>20} {'1 process, 2 threads':>21} {'DDP 2 ranks x 1 thread':>23}"
    print(f"{header} {'DDP speed-up':>13}")
    for batch in (int(b) for b in args.batches.split(",")):
        single, threaded, distributed = one_process(batch, args.steps, 1), one_process(batch, args.steps, 2), ddp(batch, args.steps)
        times = f"{single * 1e3:>17.2f} ms {threaded * 1e3:>18.2f} ms {distributed * 1e3:>20.2f} ms"
        print(f"{batch:>12} {times} {single / distributed:>12.2f}x")
    print(f"load average after:  {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
