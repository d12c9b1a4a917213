"""For users with a network: fetch a dataset's files from its public source into the data directory.

Only sets whose public files are byte-identical to our manifest are fetched automatically
(their sha256 is checked after download; a mismatching download is deleted). Existing files are
never overwritten. Never called by the tests with a real address.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from modekit.data.files import DataFileError, data_dir, manifest, sha256
from modekit.errors import UserError

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
        written.append(_download(url, target, expected.get(relative, {}).get("sha256")))
    return written


def _download(url: str, target: Path, want: str | None) -> Path:
    """One file, through a temporary file beside the target: a failed, interrupted or mismatching
    download leaves nothing behind (neither the temporary file nor a folder made for it)."""
    made = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)
    try:
        with handle, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, handle)
        actual = sha256(Path(handle.name))
        if want and actual != want:
            raise DataFileError(f"download of {url} has sha256 {actual}, expected {want}: deleted, nothing written")
        os.replace(handle.name, target)
        return target
    except BaseException as error:
        Path(handle.name).unlink(missing_ok=True)
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OSError):  # URLError, HTTPError, timeouts, a full disk
            raise DataFileError(f"download of {url} failed ({getattr(error, 'reason', error)}): nothing written") from None
        raise
