"""Splitting the training set over the K devices (Sec. VI-A) with flwr-datasets partitioners."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from task.errors import ConfigError
from task.names import PARTITION_NAMES

# Seed of the held-out pre-training slice: the same slice whatever the run's seed.
HOLDOUT_SEED = 2021

# Dirichlet partitions are redrawn (by flwr-datasets, up to 10 times) until each holds at
# least this many examples, or N // K if that is smaller.
DIRICHLET_MIN_PARTITION_SIZE = 10


def partition_indices(
    labels: np.ndarray, num_partitions: int, scheme: str, seed: int, alpha: float = 0.5
) -> list[np.ndarray]:
    """Assign training examples to devices; cached per process.

    Parameters
    ----------
    labels
        Training labels, one per example.
    num_partitions
        Number of devices K.
    scheme
        ``"iid"``: shuffled and cut into K near-equal contiguous parts (the paper's IID case).
        ``"shards"``: sorted by label, cut into 2K shards of ``N // (2K)`` examples, two random
        shards per device (the paper's non-IID case; up to ``2K - 1`` trailing examples are
        left out). ``"dirichlet"``: per-class Dirichlet(``alpha``) proportions.
    seed
        Seed of the partitioner's randomness.
    alpha
        Dirichlet concentration, only for ``"dirichlet"``.

    Returns
    -------
    list of np.ndarray
        Read-only int64 indices into ``labels``, one array per device, pairwise disjoint.

    Raises
    ------
    ConfigError
        Unknown scheme (field ``partition``), too many partitions for the examples (field
        ``num-partitions``) or a non-positive ``alpha`` (field ``dirichlet-alpha``).
    """
    labels = np.asarray(labels)
    if scheme not in PARTITION_NAMES:
        raise ConfigError.unknown_choice("partition", scheme, PARTITION_NAMES)
    if num_partitions < 1:
        raise ConfigError("num-partitions", f"must be >= 1, got {num_partitions}")
    needed = 2 * num_partitions if scheme == "shards" else num_partitions
    if needed > len(labels):
        raise ConfigError(
            "num-partitions",
            f"{num_partitions} partitions with scheme {scheme!r} need at least {needed}"
            f" training examples, got {len(labels)}",
        )
    if scheme == "dirichlet" and not alpha > 0:
        raise ConfigError("dirichlet-alpha", f"must be > 0, got {alpha}")
    key = (labels.astype(np.int64).tobytes(), num_partitions, scheme, seed, float(alpha))
    return list(_partition(*key))


@functools.lru_cache(maxsize=8)
def _partition(
    labels: bytes, num_partitions: int, scheme: str, seed: int, alpha: float
) -> tuple[np.ndarray, ...]:
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner, ShardPartitioner

    label_array = np.frombuffer(labels, dtype=np.int64)
    if scheme == "iid":
        partitioner = IidPartitioner(num_partitions=num_partitions)
    elif scheme == "shards":
        partitioner = ShardPartitioner(
            num_partitions=num_partitions,
            partition_by="label",
            num_shards_per_partition=2,
            seed=seed,
        )
    else:
        partitioner = DirichletPartitioner(
            num_partitions=num_partitions,
            partition_by="label",
            alpha=alpha,
            min_partition_size=min(
                DIRICHLET_MIN_PARTITION_SIZE, len(label_array) // num_partitions
            ),
            self_balancing=False,
            seed=seed,
        )
    dataset = Dataset.from_dict({"index": np.arange(len(label_array)), "label": label_array})
    # IidPartitioner cuts contiguous blocks: shuffle first, as the paper's IID case does.
    partitioner.dataset = dataset.shuffle(seed=seed) if scheme == "iid" else dataset
    try:
        parts = tuple(
            partitioner.load_partition(pid).with_format("numpy")[:]["index"].astype(np.int64)
            for pid in range(num_partitions)
        )
    except ValueError as exc:  # the Dirichlet draw kept leaving a partition too small
        raise ConfigError("dirichlet-alpha", f"{alpha}: {exc}") from exc
    for part in parts:
        part.setflags(write=False)
    return parts


def holdout_split(num_examples: int, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the training indices the devices share and the held-out slice, both sorted.

    The slice (``feel pretrain``'s training data, run-config ``holdout-examples``) is a
    seeded draw of ``holdout`` examples, :data:`HOLDOUT_SEED` whatever the run's seed, so a
    pre-trained model and every run that starts from it leave out the same examples.

    Raises
    ------
    ConfigError
        Field ``holdout-examples``, if it leaves no example to the devices.
    """
    if not 0 <= holdout < num_examples:
        raise ConfigError(
            "holdout-examples", f"must be in [0, {num_examples}), the training set, got {holdout}"
        )
    order = np.random.default_rng(HOLDOUT_SEED).permutation(num_examples)
    return np.sort(order[holdout:]), np.sort(order[:holdout])


def device_indices(
    labels: np.ndarray, num_partitions: int, config: Mapping[str, Any]
) -> list[np.ndarray]:
    """Return each device's training indices under the run ``config``.

    The partition of the examples outside the held-out slice (:func:`holdout_split`).

    Raises
    ------
    ConfigError
        As :func:`partition_indices` and :func:`holdout_split`.
    """
    pool, _ = holdout_split(len(labels), config["holdout-examples"])
    parts = partition_indices(
        np.asarray(labels)[pool],
        num_partitions,
        config["partition"],
        config["seed"],
        config["dirichlet-alpha"],
    )
    return [pool[part] for part in parts]


def partition_sizes(
    labels: np.ndarray, config: Mapping[str, Any], num_partitions: int
) -> tuple[int, ...] | None:
    """Return each device's number of examples under the run ``config``, None if K is invalid.

    The sizes of :func:`device_indices`, as the server checks the devices' ``num-examples``.
    """
    try:
        return tuple(len(part) for part in device_indices(labels, num_partitions, config))
    except ConfigError:
        return None
