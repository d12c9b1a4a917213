"""Code habits the suite enforces: the layer contract (import-linter), lint and format (ruff), one
host conversion, and no reference to documents outside the repository."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modekit as mk

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "modekit"


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists() and not shutil.which(name):
        pytest.fail(f"{name} is not installed: run `bash ci/setup.sh` (it is pinned in requirements.txt)")
    return str(path if path.exists() else shutil.which(name))


def test_layers_contract_is_kept():
    out = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 kept, 0 broken" in out.stdout


def test_ruff_lint_and_format():
    ruff = _tool("ruff")
    lint = subprocess.run([ruff, "check", "modekit", "tests", "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    form = subprocess.run([ruff, "format", "--check", "modekit", "tests", "notebooks"], cwd=ROOT, capture_output=True, text=True)
    assert form.returncode == 0, form.stdout + form.stderr


def test_every_host_conversion_goes_through_to_numpy():
    """`.numpy()` on a CUDA tensor fails: the package converts through modekit.device.to_numpy,
    except in the data layer, whose tensors are built on the CPU (and say so with .cpu())."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "device.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ".numpy()" in line and ".cpu().numpy()" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "host conversions outside to_numpy:\n" + "\n".join(offenders)


def test_no_reference_to_documents_outside_the_repository():
    """Users clone the repository only: code and README cite docs/, never ../shared."""
    pattern = re.compile(r"\.\./shared|shared/docs|shared folder|shared data README")
    hits = []
    for path in [*PACKAGE.rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)
    for cited in ("docs/method.md", "docs/architecture.md"):
        assert (ROOT / cited).is_file(), f"{cited} is cited by the code but missing"


def test_readme_states_the_split_the_code_makes():
    """The README said 60 / 20 / 20 where the code makes 64 / 16 / 20."""
    line = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| splits"))
    train, val, test = (int(v) / 100 for v in re.search(r"(\d+) / (\d+) / (\d+)", line).groups())
    rng = np.random.default_rng(0)
    data = mk.data.from_arrays(rng.normal(size=(1000, 3)), rng.integers(0, 2, 1000), seed=0)
    sizes = np.array([len(data.y_train), len(data.y_val), len(data.y_test)]) / 1000
    np.testing.assert_allclose(sizes, [train, val, test], atol=0.01)
