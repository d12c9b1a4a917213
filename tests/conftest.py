import os

import pytest

# CPU threads: torch's default, or OMP_NUM_THREADS (ci/test.sh sets 1 for every process it starts)


@pytest.fixture(scope="session")
def subtasks():
    import modekit

    # the 2-D sub-task set: small and learnable in a few epochs (the 5-D XOR set needs more data and epochs)
    return modekit.load("subtasks2d", seed=0, n_samples=600)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Parsed-data cache in a fresh folder: tests never read a cache a previous run left behind."""
    previous = os.environ.get("MODEKIT_CACHE")
    os.environ["MODEKIT_CACHE"] = str(tmp_path_factory.mktemp("modekit-cache"))
    yield
    if previous is None:
        os.environ.pop("MODEKIT_CACHE", None)
    else:
        os.environ["MODEKIT_CACHE"] = previous


def shared_data_dir():
    from pathlib import Path

    value = os.environ.get("MODEKIT_DATA")
    return Path(value) if value and Path(value, "SHA256SUMS").is_file() else None


requires_data = pytest.mark.skipif(
    shared_data_dir() is None,
    reason="real datasets absent: set MODEKIT_DATA to a data directory (CI uses ../shared/data)",
)
