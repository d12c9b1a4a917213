"""MNIST and Fashion-MNIST from the data directory as (N, 1, 28, 28) float tensors, via torchvision.

- Fashion-MNIST: the data directory holds torchvision's own raw files (gzipped IDX). They are checked
  against data/manifest.csv, unpacked into a temporary `FashionMNIST/raw/` folder and read by
  `torchvision.datasets.FashionMNIST(download=False)`: nothing is downloaded.
- MNIST: the data directory holds Keras' `mnist.npz`, a format `torchvision.datasets.MNIST` does not
  read (it wants the IDX files), so NumPy reads it.

Official train / test splits; the validation split (10,000 images) is carved, stratified and
seeded, from the training images. Pixels go through one `torchvision.transforms.v2` pipeline:
uint8 -> float in [0, 1] (`ToDtype(scale=True)`), then `Normalize` with the training split's mean
and standard deviation.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from modekit.data.dataset import Dataset, split_indices, tensors_from_parts
from modekit.data.files import DataFileError, cached, locate

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGES = {
    "mnist": {
        "files": ["images/mnist/mnist.npz"],
        "classes": [str(d) for d in range(10)],
        "source": "MNIST (LeCun, Cortes & Burges), Keras mnist.npz",
        "licence": "CC BY-SA 3.0",
        "how": "`python -m modekit data fetch mnist` (downloads Keras' mnist.npz and checks its sha256)",
    },
    "fashion_mnist": {
        "files": [f"images/fashion_mnist/{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")],
        "classes": FASHION_CLASSES,
        "source": "Fashion-MNIST (Zalando Research), IDX files",
        "licence": "MIT",
        "how": "`python -m modekit data fetch fashion_mnist` (downloads the IDX files and checks their sha256), "
        "or copy torchvision's FashionMNIST/raw/*-ubyte.gz files",
    },
}
VALIDATION_IMAGES = 10_000


def read_fashion_mnist(paths: list[Path]) -> dict[str, np.ndarray]:
    """The four verified IDX files through torchvision.datasets.FashionMNIST (no download)."""
    from torchvision.datasets import FashionMNIST

    with tempfile.TemporaryDirectory() as root:
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for path in paths:  # torchvision reads the unpacked files; the data directory is only read
            with gzip.open(path, "rb") as packed, open(raw / Path(path).stem, "wb") as unpacked:
                shutil.copyfileobj(packed, unpacked)
        try:
            splits = {split: FashionMNIST(root, train=split == "train", download=False) for split in ("train", "test")}
        except (AssertionError, TypeError, ValueError, RuntimeError) as error:
            raise DataFileError(f"Fashion-MNIST files {', '.join(map(str, paths))} are malformed: {error}") from None
    arrays = {}
    for split, data in splits.items():
        arrays[f"x_{split}"], arrays[f"y_{split}"] = data.data.cpu().numpy(), data.targets.cpu().numpy()
    return arrays


def _parse(name: str, paths) -> dict[str, np.ndarray]:
    if name == "mnist":
        with np.load(paths[0], allow_pickle=False) as stored:
            return {k: stored[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return read_fashion_mnist(paths)


def normalised(images: torch.Tensor, train_index: np.ndarray) -> tuple[torch.Tensor, float, float]:
    """uint8 (N, 1, H, W) -> float32 scaled to [0, 1], normalised with the training rows' mean and
    standard deviation: x <- (x / 255 - mean_train) / std_train. Returns (images, mean, std)."""
    from torchvision.transforms import v2

    scaled = v2.ToDtype(torch.float32, scale=True)(images)
    train = scaled[torch.as_tensor(train_index)]
    mean, std = float(train.mean()), float(train.std(correction=0))
    return v2.Normalize(mean=[mean], std=[std])(scaled), mean, std


def load_images(name: str, seed: int = 0, verify: bool = True) -> Dataset:
    spec = IMAGES[name]
    located = [locate(path, spec["how"], verify) for path in spec["files"]]
    arrays = cached(name, [sha for _, sha in located], {}, lambda: _parse(name, [p for p, _ in located]))
    images = torch.as_tensor(np.concatenate([arrays["x_train"], arrays["x_test"]]))[:, None]
    y = np.concatenate([arrays["y_train"], arrays["y_test"]]).astype(np.int64)
    n_train = len(arrays["y_train"])
    train_index, val_index, _ = split_indices(y[:n_train], seed, val_size=VALIDATION_IMAGES, has_test=True)
    pixels, mean, std = normalised(images, train_index)
    parts = {"train": train_index, "val": val_index, "test": np.arange(n_train, len(y))}
    return Dataset(
        name=name,
        domain="image",
        class_names=spec["classes"],
        metadata={
            "seed": seed,
            "rows": len(y),
            "source": spec["source"],
            "licence": spec["licence"],
            "mean": float(mean),
            "std": float(std),
        },
        **tensors_from_parts(pixels.cpu().numpy(), y, parts),
    )
