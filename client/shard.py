"""A device's training examples (its partition), kept for the process and, if asked, on disk.

In a simulation actor the shard is a view of the process's dataset, which serves every device
of the actor. In deployment Flower 1.42 starts a fresh ClientApp process for every message,
and loading the dataset and cutting it into partitions (sklearn, Hugging Face ``datasets``,
``flwr-datasets``) would be most of a message's work. With ``FEEL_CACHE_DIR`` set, the first
message writes the device's examples to a file there, named by everything they depend on, and
later processes read that file instead.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# Environment variable naming the folder of the on-disk shards (unset: none are written).
CACHE_ENV = "FEEL_CACHE_DIR"
# Shards a process keeps loaded (the most recent ones).
CACHED_SHARDS = 64
# Run-config keys the partition depends on (with the node's partition id and count).
PARTITION_KEYS = ("dataset", "data-dir", "partition", "dirichlet-alpha", "seed", "holdout-examples")
# The modules whose code makes a shard: a change in them makes a new file.
_SOURCES = ("task/data.py", "task/partition.py", "task/idx.py")


@dataclass(frozen=True)
class Shard:
    """A device's examples: rows ``indices`` of the images ``x`` and labels ``y``.

    ``x`` and ``y`` are the whole training set (a view of the process's dataset) or the
    device's own examples read from disk; either way read-only.
    """

    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        """Return the local dataset size N_k."""
        return len(self.indices)

    def examples(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the images and labels at ``positions`` in the device's own order."""
        rows = self.indices[positions]
        return self.x[rows], self.y[rows]


def local_shard(config: Mapping[str, Any], partition_id: int, num_partitions: int) -> Shard:
    """Return the examples of device ``partition_id`` of ``num_partitions`` under ``config``.

    Read from ``$FEEL_CACHE_DIR`` when set and the file is there; else cut from the dataset
    (and written there when set).

    Raises
    ------
    ConfigError
        As :func:`task.data.load_dataset` and :func:`task.partition.device_indices`.
    """
    key = tuple(config[k] for k in PARTITION_KEYS)
    return _shard(key, partition_id, num_partitions, os.environ.get(CACHE_ENV, ""))


def write_shards(config: Mapping[str, Any], num_partitions: int, cache_dir: Path) -> None:
    """Write every device's shard into ``cache_dir``, as each device's first message would.

    A Simulation Engine actor given ``$FEEL_CACHE_DIR`` then reads its devices' examples
    there, and neither loads the dataset nor imports the partitioners (Hugging Face
    ``datasets``, about 0.2 GB a process).
    """
    config = {k: config[k] for k in PARTITION_KEYS}
    for partition_id in range(num_partitions):
        shard = _cut(config, partition_id, num_partitions)
        x, y = shard.examples(np.arange(len(shard)))
        _write(_path(cache_dir, config, partition_id, num_partitions), x, y)


def _path(
    cache_dir: str | Path, config: Mapping[str, Any], partition_id: int, num_partitions: int
) -> Path:
    """Return the file of a shard: named by its partition keys (``config``), device, count."""
    return Path(cache_dir) / f"shard-{_name(config, partition_id, num_partitions)}.npz"


@functools.lru_cache(maxsize=CACHED_SHARDS)
def _shard(key: tuple, partition_id: int, num_partitions: int, cache_dir: str) -> Shard:
    config = dict(zip(PARTITION_KEYS, key, strict=True))
    if not cache_dir:
        return _cut(config, partition_id, num_partitions)
    try:
        path = _path(cache_dir, config, partition_id, num_partitions)
    except OSError:  # the data files are not there: the dataset's loader says so
        return _cut(config, partition_id, num_partitions)
    if path.is_file():
        with np.load(path) as saved:
            x, y = saved["x"], saved["y"]
        return Shard(*_frozen(x, y, np.arange(len(y))))
    shard = _cut(config, partition_id, num_partitions)
    x, y = shard.examples(np.arange(len(shard)))
    _write(path, x, y)
    return Shard(*_frozen(x, y, np.arange(len(y))))


def _cut(config: Mapping[str, Any], partition_id: int, num_partitions: int) -> Shard:
    """Return the device's shard as a view of this process's dataset."""
    from task.data import load_dataset

    data = load_dataset(config["dataset"], config["data-dir"] or None)
    key = tuple(config[k] for k in PARTITION_KEYS)
    return Shard(data.x_train, data.y_train, _partition(key, num_partitions)[partition_id])


@functools.lru_cache(maxsize=4)
def _partition(key: tuple, num_partitions: int) -> tuple[np.ndarray, ...]:
    """Return every device's training indices under the partition keys ``key``.

    Cached per process apart from the shards: an actor of a thousand devices cuts each
    device's shard from it, and working the indices out again for each would cost a
    millisecond.
    """
    from task.data import load_dataset
    from task.partition import device_indices

    config = dict(zip(PARTITION_KEYS, key, strict=True))
    data = load_dataset(config["dataset"], config["data-dir"] or None)
    return tuple(device_indices(data.y_train, num_partitions, config))


def _frozen(*arrays: np.ndarray) -> list[np.ndarray]:
    for array in arrays:
        array.setflags(write=False)
    return list(arrays)


def _write(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write the shard to ``path`` whole or not at all (devices may share the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.part")
    with os.fdopen(handle, "wb") as file:
        np.savez(file, x=x, y=y)
    os.replace(temporary, path)


def _name(config: Mapping[str, Any], partition_id: int, num_partitions: int) -> str:
    """Return a digest of what the shard depends on: config, partition, data files, code."""
    described = {
        "config": dict(config),
        "partition": [partition_id, num_partitions],
        "data": _data_stamp(config["dataset"], config["data-dir"]),
        "code": [_digest(Path(__file__).parent.parent / source) for source in _SOURCES],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def _data_stamp(dataset: str, data_dir: str) -> list:
    """Return what identifies the dataset's files: names, sizes and times, or the version."""
    from task.idx import TORCHVISION_FOLDERS, idx_folder

    if dataset == "digits":
        return ["scikit-learn", metadata.version("scikit-learn")]
    if dataset in TORCHVISION_FOLDERS:
        folder = idx_folder(dataset, data_dir or None)
    elif dataset == "cifar10":
        folder = Path(data_dir).expanduser() / "cifar-10-batches-py"
    else:
        return [dataset]
    files = sorted(path for path in folder.iterdir() if path.is_file())
    return [[path.name, path.stat().st_size, path.stat().st_mtime_ns] for path in files]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
