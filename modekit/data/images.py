"""MNIST and Fashion-MNIST from the data directory as (N, 1, 28, 28) float tensors.

Official train / test splits; the validation split (10,000 images) is carved, stratified and
seeded, from the training images. Pixels are scaled to [0, 1] and normalised with the training
split's mean and standard deviation.
"""

from __future__ import annotations

import gzip

import numpy as np

from ..errors import UserError
from .dataset import Dataset, split_indices, tensors_from_parts
from .files import cached, locate

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGES = {
    "mnist": {
        "files": ["images/mnist/mnist.npz"],
        "classes": [str(d) for d in range(10)],
        "source": "MNIST (LeCun, Cortes & Burges), Keras mnist.npz",
        "licence": "CC BY-SA 3.0",
        "how": "`python -m modekit data fetch mnist` (torchvision), or download Keras' mnist.npz",
    },
    "fashion_mnist": {
        "files": [f"images/fashion_mnist/{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")],
        "classes": FASHION_CLASSES,
        "source": "Fashion-MNIST (Zalando Research), IDX files",
        "licence": "MIT",
        "how": "`python -m modekit data fetch fashion_mnist` (torchvision), or the IDX files from github.com/zalandoresearch/fashion-mnist",
    },
}
VALIDATION_IMAGES = 10_000


def read_idx(path) -> np.ndarray:
    """An IDX file (gzipped): magic number, dimension sizes (big-endian int32), then uint8 data."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    n_dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims)
    if data.size != int(np.prod(shape)):
        raise UserError(f"IDX file {path} is malformed: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def _parse(name: str, paths) -> dict[str, np.ndarray]:
    if name == "mnist":
        with np.load(paths[0], allow_pickle=False) as stored:
            return {k: stored[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    train_x, train_y, test_x, test_y = (read_idx(p) for p in paths)
    return {"x_train": train_x, "y_train": train_y, "x_test": test_x, "y_test": test_y}


def load_images(name: str, seed: int = 0, verify: bool = True) -> Dataset:
    spec = IMAGES[name]
    located = [locate(path, spec["how"], verify) for path in spec["files"]]
    arrays = cached(name, [sha for _, sha in located], {}, lambda: _parse(name, [p for p, _ in located]))
    pixels = np.concatenate([arrays["x_train"], arrays["x_test"]]).astype(np.float32)[:, None] / 255.0
    y = np.concatenate([arrays["y_train"], arrays["y_test"]]).astype(np.int64)
    n_train = len(arrays["y_train"])
    train_index, val_index, _ = split_indices(y[:n_train], seed, val_size=VALIDATION_IMAGES, has_test=True)
    mean, std = pixels[train_index].mean(), pixels[train_index].std()
    # x <- (x - mean_train) / std_train
    pixels = (pixels - mean) / std
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
        **tensors_from_parts(pixels, y, parts),
    )
