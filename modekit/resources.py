"""The files the kit ships besides its code: the notebooks and the data manifest.

In the repository they live at its top level (`notebooks/*.ipynb`, `data/manifest.csv`); the wheel
carries them as package data (`modekit/_notebooks/`, `modekit/_data/`, mapped there by
pyproject.toml's package-dir), read through `importlib.resources`: the packaged copy first, else
the checkout's.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from modekit.errors import UserError

REPOSITORY = Path(__file__).resolve().parents[1]
HOW_TO_GET = (
    "install a wheel built from the repository (`pip wheel --no-deps .` ships the notebooks and data/manifest.csv), "
    "or run from a checkout of the repository"
)


class ResourceMissingError(UserError):
    """A file the kit ships (a notebook, the data manifest) is not in this installation."""


def folder(top: str) -> Path:
    """Where the shipped folder `top` ("notebooks" or "data") is: the wheel's package data, else the checkout's."""
    packaged = resources.files(__package__).joinpath(f"_{top}")
    if isinstance(packaged, Path) and packaged.is_dir():  # installed wheels are plain folders
        return packaged
    return REPOSITORY / top


def resource(relative: str) -> Path:
    """The path of a shipped file, e.g. "notebooks/00_quickstart.ipynb" or "data/manifest.csv"."""
    top, _, rest = relative.partition("/")
    path = folder(top) / rest
    if not path.is_file():
        raise ResourceMissingError(f"{relative} is missing from this modekit installation (looked for {path}): {HOW_TO_GET}")
    return path


def copy_notebooks(target: Path) -> tuple[list[Path], list[Path]]:
    """Copy every shipped notebook, the lessons and their `solutions/`, into the folder `target` (made
    if missing) for a student to edit: (copied, kept). A file that already exists there is kept as it
    is, never overwritten."""
    source = folder("notebooks")
    notebooks = sorted([*source.glob("*.ipynb"), *source.glob("solutions/*.ipynb")])
    if not notebooks:
        raise ResourceMissingError(f"no notebooks in {source}: {HOW_TO_GET}")
    if target.exists() and not target.is_dir():
        raise UserError(f"DIR={str(target)!r} is a file: give a folder for the notebook copies (new or existing)")
    target.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for notebook in notebooks:
        destination = target / notebook.relative_to(source)
        destination.parent.mkdir(exist_ok=True)
        try:
            with open(destination, "xb") as handle:  # "x": fails if the file exists, so nothing is overwritten
                handle.write(notebook.read_bytes())
            copied.append(destination)
        except FileExistsError:
            kept.append(destination)
    return copied, kept
