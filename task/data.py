"""Datasets of the experiments: sklearn digits (bundled), MNIST-style sets, CIFAR-10 (Sec. VI-A)."""

from __future__ import annotations

import functools
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from task.errors import ConfigError
from task.idx import TORCHVISION_FOLDERS, idx_folder, read_split
from task.names import DATASET_NAMES

# Size of the synthetic CIFAR-shaped dataset (benchmarks of the 32x32 models without the data).
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 5000, 1000

# Seed of the digits train/test split: the same split in every process.
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """A train/test split as read-only arrays.

    ``x_*`` are float32 ``(N, C, H, W)`` images, ``y_*`` int64 labels in ``[0, num_classes)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    in_channels: int
    image_size: int


@dataclass(frozen=True)
class DatasetShape:
    """What a model needs of a dataset: its classes and its (square) image shape."""

    num_classes: int
    in_channels: int
    image_size: int


# The shape of each dataset, known without loading it (a model is built before any data).
SHAPES = {
    "digits": DatasetShape(10, 1, 8),
    "fashion-mnist": DatasetShape(10, 1, 28),
    "mnist": DatasetShape(10, 1, 28),
    "cifar10": DatasetShape(10, 3, 32),
    "synthetic-cifar": DatasetShape(10, 3, 32),
}


def dataset_shape(name: str) -> DatasetShape:
    """Return dataset ``name``'s classes and image shape, as :func:`load_dataset` gives them.

    Raises
    ------
    ConfigError
        For an unknown ``name`` (field ``dataset``).
    """
    if name not in SHAPES:
        raise ConfigError.unknown_choice("dataset", name, DATASET_NAMES)
    return SHAPES[name]


def _frozen(*arrays: np.ndarray) -> list[np.ndarray]:
    """Make the cached arrays read-only: one process serves many simulated clients."""
    for array in arrays:
        array.setflags(write=False)
    return list(arrays)


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / digits.images.max()).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=DIGITS_SPLIT_SEED
    )
    return Dataset(*_frozen(x_train, y_train, x_test, y_test), *astuple(SHAPES["digits"]))


def _standardised(x_train: np.ndarray, x_test: np.ndarray) -> None:
    """Standardise both splits per channel, in place, with the training set's statistics."""
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    for x in (x_train, x_test):  # in place: CIFAR-10's training set is 600 MB as float32
        x -= mean
        x /= std


def _idx_dataset(name: str, data_dir: str | None) -> Dataset:
    """MNIST or Fashion-MNIST, 28x28x1, standardised like CIFAR-10 (:mod:`task.idx`)."""
    folder = idx_folder(name, data_dir)
    (train_images, y_train), (test_images, y_test) = (
        read_split(folder, split) for split in ("train", "test")
    )
    x_train, x_test = (
        np.asarray(images[:, None, :, :], dtype=np.float32) / 255.0
        for images in (train_images, test_images)
    )
    _standardised(x_train, x_test)
    y_train, y_test = (np.asarray(y, dtype=np.int64) for y in (y_train, y_test))
    return Dataset(*_frozen(x_train, y_train, x_test, y_test), *astuple(SHAPES[name]))


def _cifar10(data_dir: str | None) -> Dataset:
    train, test = _cifar10_splits(data_dir)
    x_train, x_test = (
        np.ascontiguousarray(split.data.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        for split in (train, test)
    )
    _standardised(x_train, x_test)
    y_train, y_test = (np.asarray(split.targets, dtype=np.int64) for split in (train, test))
    return Dataset(*_frozen(x_train, y_train, x_test, y_test), *astuple(SHAPES["cifar10"]))


def _cifar10_splits(data_dir: str | None) -> tuple[Any, Any]:
    """Return torchvision's CIFAR-10 train and test sets in ``data_dir`` (uint8 images)."""
    from torchvision.datasets import CIFAR10

    if not data_dir:
        raise ConfigError("data-dir", "required for dataset 'cifar10' (no downloads at run time)")
    root = Path(data_dir).expanduser()
    try:
        train, test = (CIFAR10(str(root), train=split, download=False) for split in (True, False))
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted."
        raise ConfigError("data-dir", f"CIFAR-10 not found in {root}") from exc
    return train, test


def train_labels(name: str, data_dir: str | None = None) -> np.ndarray:
    """Return the training labels of dataset ``name``, checking that its files are there.

    For checks before a run: cheaper than :func:`load_dataset` for CIFAR-10, whose images
    stay uint8 here.

    Raises
    ------
    ConfigError
        As :func:`load_dataset`.
    """
    if name == "cifar10":
        train, _ = _cifar10_splits(data_dir)
        return np.asarray(train.targets, dtype=np.int64)
    return load_dataset(name, data_dir).y_train


def _synthetic_cifar() -> Dataset:
    """Standard-normal 3x32x32 images with uniform random labels: speed, not accuracy."""
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    n = SYNTHETIC_TRAIN + SYNTHETIC_TEST
    x = rng.standard_normal((n, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    cut, shape = SYNTHETIC_TRAIN, astuple(SHAPES["synthetic-cifar"])
    return Dataset(*_frozen(x[:cut], y[:cut], x[cut:], y[cut:]), *shape)


@functools.lru_cache(maxsize=2)
def load_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """Load a dataset once per process (a Ray actor serves many simulated clients).

    Parameters
    ----------
    name
        ``"digits"``: sklearn's bundled 8x8 digits scaled to [0, 1], a stratified 80/20 split
        with seed :data:`DIGITS_SPLIT_SEED` (1437 train, 360 test). ``"cifar10"``: the
        torchvision CIFAR-10 files in ``data_dir`` (never downloaded), per-channel
        standardised with the training-set mean and standard deviation.
        ``"synthetic-cifar"``: random CIFAR-shaped tensors (5000 train, 1000 test) for
        timing the 32x32 models where CIFAR-10 is not at hand. ``"fashion-mnist"``,
        ``"mnist"``: the 60,000 + 10,000 28x28 images of their idx files
        (:func:`task.idx.idx_folder`), standardised like CIFAR-10.
    data_dir
        Folder holding ``cifar-10-batches-py`` or the idx files; ignored for digits.

    Raises
    ------
    ConfigError
        Unknown ``name`` (field ``dataset``) or its files missing (field ``data-dir``).
    """
    if name == "digits":
        return _digits()
    if name in TORCHVISION_FOLDERS:
        return _idx_dataset(name, data_dir)
    if name == "cifar10":
        return _cifar10(data_dir)
    if name == "synthetic-cifar":
        return _synthetic_cifar()
    raise ConfigError.unknown_choice("dataset", name, DATASET_NAMES)
