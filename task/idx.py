"""MNIST-style datasets (MNIST, Fashion-MNIST) from their four idx files, offline.

The files are read where they are: torchvision's folder layout (``<data-dir>/FashionMNIST/raw``
or ``<data-dir>/MNIST/raw``, as its ``download=True`` leaves them) or a flat folder with the
four files, gzipped or not, such as Debian's package ``dataset-fashion-mnist`` installs under
:data:`DEBIAN_FASHION_MNIST`. Nothing is downloaded at run time.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from task.errors import ConfigError

# Where Debian's ``dataset-fashion-mnist`` puts the full Fashion-MNIST (60,000 + 10,000).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# torchvision's class folder name per dataset.
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# How to get the files, per dataset, for the error when they are missing.
HOW_TO_GET = {
    "fashion-mnist": "apt-get install dataset-fashion-mnist (Debian), or torchvision's "
    "FashionMNIST(root, download=True) on a machine with a network",
    "mnist": "torchvision's MNIST(root, download=True) on a machine with a network",
}
# The idx type code of unsigned bytes, the only one the MNIST files use.
UBYTE = 0x08


def parse_idx(data: bytes) -> np.ndarray:
    """Return the uint8 array of an idx file's bytes (magic 0 0 0x08 ndim, big-endian dims).

    Raises
    ------
    ValueError
        If the header is not an idx header of unsigned bytes or the data do not fit it.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UBYTE:
        raise ValueError("not an idx file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    if len(data) - header != int(np.prod(shape)):
        raise ValueError(f"idx data of {len(data) - header} bytes do not fit shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def idx_folder(name: str, data_dir: str | None) -> Path:
    """Return the folder holding dataset ``name``'s idx files.

    ``data_dir`` itself, or its torchvision ``<Class>/raw`` subfolder; without a
    ``data_dir``, Fashion-MNIST is looked for in :data:`DEBIAN_FASHION_MNIST`.

    Raises
    ------
    ConfigError
        Field ``data-dir``: naming the folder and how to get the files.
    """
    if data_dir:
        root = Path(data_dir).expanduser()
    elif name == "fashion-mnist":
        root = DEBIAN_FASHION_MNIST
    else:
        raise ConfigError("data-dir", f"required for dataset {name!r}: {HOW_TO_GET[name]}")
    for folder in (root, root / TORCHVISION_FOLDERS[name] / "raw"):
        if all(_file(folder, stem) for stem in SPLIT_FILES["train"] + SPLIT_FILES["test"]):
            return folder
    raise ConfigError(
        "data-dir", f"{name} idx files not found in {root}; get them with {HOW_TO_GET[name]}"
    )


def _file(folder: Path, stem: str) -> Path | None:
    """Return the idx file ``stem`` in ``folder``, uncompressed or gzipped, if there."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the uint8 ``(N, 28, 28)`` images and the labels of ``split`` in ``folder``.

    Raises
    ------
    ConfigError
        Field ``data-dir``, if a file does not parse or images and labels disagree.
    """
    arrays = []
    for stem in SPLIT_FILES[split]:
        path = _file(folder, stem)
        if path is None:
            raise ConfigError("data-dir", f"{folder / stem} is missing")
        raw = path.read_bytes()
        try:
            arrays.append(parse_idx(gzip.decompress(raw) if path.suffix == ".gz" else raw))
        except (ValueError, OSError, EOFError) as exc:
            raise ConfigError("data-dir", f"{path} does not read: {exc}") from None
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ConfigError(
            "data-dir", f"{folder}: {split} images {images.shape}, labels {labels.shape}"
        )
    return images, labels
