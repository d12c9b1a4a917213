"""Tests of modekit.device."""

import numpy as np
import torch

from modekit.device import tf32_allowed, to_numpy


def test_to_numpy_handles_grad_and_bf16():
    tensor = torch.ones(3, requires_grad=True) * 2
    assert to_numpy(tensor).tolist() == [2.0, 2.0, 2.0]
    half = to_numpy(torch.ones(2, dtype=torch.bfloat16))
    assert half.dtype == np.float32


def test_tf32_is_scoped_to_the_run():
    """train() used to switch the process-wide TF32 flags on CUDA and leave them on."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with tf32_allowed(torch.device("cuda")):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
