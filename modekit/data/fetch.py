"""For users with a network: fetch a dataset's files from its public source into the data directory.

Only sets whose public files are byte-identical to our manifest are fetched automatically
(their sha256 is checked after download; a mismatching download is deleted). Existing files are
never overwritten. Never called by the tests with a real address.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..errors import UserError
from .files import DataFileError, data_dir, manifest, sha256

FASHION = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
SOURCES = {
    "mnist": {"images/mnist/mnist.npz": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"},
    "fashion_mnist": {
        f"images/fashion_mnist/{part}-ubyte.gz": FASHION + f"{part}-ubyte.gz"
        for part in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    },
}


def fetch(name: str, sources: dict[str, str] | None = None) -> list[Path]:
    """Download the files of `name` (or the given {relative path: URL}) into the data directory."""
    if sources is None:
        if name not in SOURCES:
            raise UserError(
                f"dataset={name!r} has no automatic fetch: choose one of {', '.join(SOURCES)}; "
                "the other sets' sources and formats are listed in data/README.md"
            )
        sources = SOURCES[name]
    expected = manifest()
    written = []
    for relative, url in sources.items():
        target = data_dir() / relative
        if target.exists():
            written.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, handle)
        actual = sha256(Path(handle.name))
        want = expected.get(relative, {}).get("sha256")
        if want and actual != want:
            os.unlink(handle.name)
            raise DataFileError(f"download of {url} has sha256 {actual}, expected {want}: deleted, nothing written")
        os.replace(handle.name, target)
        written.append(target)
    return written
