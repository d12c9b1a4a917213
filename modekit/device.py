"""Where tensors live: device choice, bf16 autocast, TF32 scoped to a run, device sync, and
`to_numpy`, the one way the kit brings a tensor to the host (works for CUDA tensors, bf16 and
tensors that require grad)."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from modekit.config import DEVICES
from modekit.errors import UserError


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA when visible, else CPU; "cuda" without a GPU is a user error."""
    if name not in DEVICES:
        raise UserError(f"device={name!r} is not allowed: device must be 'auto', 'cpu' or 'cuda'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device='cuda' is not allowed here: no CUDA GPU is visible; use device='auto' or 'cpu'")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (keeps CPU runs bit-for-bit deterministic)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@contextlib.contextmanager
def tf32_allowed(device: torch.device):
    """TF32 matmuls on CUDA inside the block only; the process-wide flags are restored after."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (timings); nothing to wait for on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A host NumPy copy of any tensor: detached, on the CPU, bf16/fp16 widened to float32."""
    tensor = tensor.detach()
    if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    return tensor.cpu().numpy()
