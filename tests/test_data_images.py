"""The image loaders' torchvision path: Fashion-MNIST's IDX files read by torchvision.datasets (from
small files made here, and from the real set when the data directory has it), the pixel pipeline of
torchvision.transforms, and a malformed file refused by name."""

import gzip

import numpy as np
import pytest
import torch

import modekit.data as D
from conftest import requires_data
from modekit.data.files import DataFileError
from modekit.data.images import normalised, read_fashion_mnist


def write_idx(path, array: np.ndarray) -> None:
    """IDX: two zero bytes, the type (0x08 = uint8), the number of dimensions, big-endian sizes, data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_files(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1": np.array([0, 1, 2, 0, 1, 2]),
        "t10k-images-idx3": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1": np.array([2, 1, 0]),
    }
    paths = []
    for name, array in arrays.items():
        paths.append(tmp_path / f"{name}-ubyte.gz")
        write_idx(paths[-1], array)
    return paths, arrays


def test_fashion_mnist_files_are_read_by_torchvision_datasets(idx_files):
    paths, arrays = idx_files
    read = read_fashion_mnist(paths)
    assert np.array_equal(read["x_train"], arrays["train-images-idx3"]) and np.array_equal(read["y_test"], arrays["t10k-labels-idx1"])
    assert read["x_test"].dtype == np.uint8 and read["x_train"].shape == (6, 28, 28)
    assert all(p.is_file() for p in paths)  # the data directory's files are only read


def test_a_malformed_idx_file_is_refused_naming_it(idx_files):
    paths, _ = idx_files
    with gzip.open(paths[0], "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + (6).to_bytes(4, "big"))  # header cut short
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.gz.* malformed"):
        read_fashion_mnist(paths)


def test_pixels_are_scaled_and_normalised_with_training_statistics_by_torchvision_transforms():
    images = torch.tensor([[0, 255], [51, 102], [255, 255]], dtype=torch.uint8).reshape(3, 1, 1, 2)
    pixels, mean, std = normalised(images, np.array([0, 1]))
    train = np.array([0, 255, 51, 102]) / 255
    assert mean == pytest.approx(train.mean()) and std == pytest.approx(train.std())
    assert pixels.dtype == torch.float32 and pixels[:2].mean().abs() < 1e-6 and pixels[:2].std(correction=0) == pytest.approx(1)
    assert torch.allclose(pixels[2], torch.full((1, 1, 2), (1 - train.mean()) / train.std()))


@requires_data
def test_real_fashion_mnist_keeps_its_checksums_and_pixels():
    data = D.load("fashion_mnist")
    raw = D.files_of("fashion_mnist")
    with gzip.open(D.data_dir() / raw[2], "rb") as handle:  # t10k images: the official test split, in order
        first = np.frombuffer(handle.read(), dtype=np.uint8, offset=16)[:784].reshape(1, 28, 28)
    expected = (first / 255 - data.metadata["mean"]) / data.metadata["std"]
    assert np.allclose(data.X_test[0].numpy(), expected, atol=1e-5)
    assert data.sizes == {"train": 50000, "val": 10000, "test": 10000}
