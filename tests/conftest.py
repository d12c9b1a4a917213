import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def subtasks():
    import modekit

    return modekit.load("subtasks", seed=0, n_samples=600)
