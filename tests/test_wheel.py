"""The installable package: the wheel carries the code, the notebooks and the data manifest, and
`python -m modekit reproduce` works from it with no repository in sight. The wheel is built from a
copy of the sources, installed with `pip install --no-deps --target` (it reuses this environment's
packages) and run from an empty folder outside the repository with only that folder on PYTHONPATH."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import modekit
from modekit.cli.parser import main
from modekit.resources import ResourceMissingError, copy_notebooks, resource

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted(p.name for p in (ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert run.returncode == 0, f"{' '.join(map(str, command))} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of what the repository tracks for the build (no stale build/ folder)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "modekit", source / "modekit", ignore=shutil.ignore_patterns("__pycache__", "_notebooks", "_data"))
    shutil.copytree(ROOT / "notebooks", source / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (source / "data").mkdir()
    for name in ("manifest.csv", "README.md"):
        shutil.copy(ROOT / "data" / name, source / "data" / name)
    dist = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check", "-q", "-w", dist, source]
    )
    (built,) = dist.glob("modekit-*.whl")
    return built


def test_the_wheel_holds_code_notebooks_manifest_and_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    code = {str(p.relative_to(ROOT)) for p in (ROOT / "modekit").rglob("*.py") if "__pycache__" not in p.parts}
    assert code <= names, f"modules missing from the wheel (list the package in pyproject.toml): {sorted(code - names)}"
    assert {f"modekit/_notebooks/{n}" for n in NOTEBOOKS} <= names and len(NOTEBOOKS) == 6
    assert {f"modekit/_notebooks/solutions/{n}" for n in SOLUTIONS} <= names and len(SOLUTIONS) == 6
    assert "modekit/_data/manifest.csv" in names
    assert wheel.name.startswith(f"modekit-{modekit.__version__}-") and any(n.endswith("licenses/LICENSE") for n in names)
    print(f"wheel {wheel.name}: {len(names)} files")
    for name in sorted(names):
        print("  ", name)


@pytest.mark.slow
def test_reproduce_runs_from_the_installed_wheel_outside_the_repository(wheel, tmp_path):
    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", "--target", site, wheel])
    user = tmp_path / "user"  # an empty folder outside the repository
    user.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "MODEKIT_FAST": "1"}
    paths = "import modekit, modekit.resources as r; print(modekit.__file__, r.folder('notebooks'), r.resource('data/manifest.csv'))"
    where = _run([sys.executable, "-c", paths], cwd=user, env=env).stdout.split()
    assert len(where) == 3 and all(Path(p).is_relative_to(site) for p in where), f"not the installed wheel: {where}"
    assert not any(Path(p).is_relative_to(ROOT) for p in where)
    _run([sys.executable, "-m", "modekit", "reproduce", "--only", "00_quickstart"], cwd=user, env=env, timeout=600)
    (report,) = user.glob("reports/*/report.md")
    assert "00_quickstart" in report.read_text()
    assert (report.parent / "00_quickstart.ipynb").is_file()
    provenance = json.loads((report.parent / "provenance.json").read_text())
    assert provenance["git_commit"] == "unknown"  # the wheel's modekit sits in no checkout
    runs = (report.parent / "runs.csv").read_text()
    assert "00_quickstart" in runs and ",ok," in runs


def test_a_missing_resource_names_the_file_and_how_to_get_it(monkeypatch, tmp_path):
    import modekit.resources as resources

    monkeypatch.setattr(resources, "REPOSITORY", tmp_path)  # a wheel without its package data, no checkout
    with pytest.raises(ResourceMissingError) as error:
        resource("data/manifest.csv")
    message = str(error.value)
    assert "data/manifest.csv" in message and "pip wheel" in message and str(tmp_path) in message
    with pytest.raises(ResourceMissingError, match="no notebooks in"):
        copy_notebooks(tmp_path / "copies")


def test_notebooks_copy_gives_editable_copies_and_never_overwrites(tmp_path, capsys):
    target = tmp_path / "my notebooks"
    target.mkdir()
    (target / "00_quickstart.ipynb").write_text("my edits")
    assert main(["notebooks", "copy", str(target)]) == 0
    out = capsys.readouterr().out
    assert (target / "00_quickstart.ipynb").read_text() == "my edits"  # kept
    assert "kept" in out and out.count("copied") == len(NOTEBOOKS) + len(SOLUTIONS) - 1
    assert sorted(p.name for p in target.glob("*.ipynb")) == NOTEBOOKS
    assert sorted(p.name for p in (target / "solutions").glob("*.ipynb")) == SOLUTIONS
    assert (target / "01_narrow_vision.ipynb").read_bytes() == (ROOT / "notebooks" / "01_narrow_vision.ipynb").read_bytes()
    assert main(["notebooks", "copy", str(target / "00_quickstart.ipynb")]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "is a file" in error
