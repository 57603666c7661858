"""Seeded fault injection: devices that fail or send corrupt replies (run-config ``inject-faults``).

With rate r, each reply of each device is faulty with probability r, independently per
device, round and message kind, and the kind of fault is drawn uniformly. The draws come
from :func:`task.seeding.stream_rng` keyed by (seed, partition id, round), so a run injects
the same faults whatever the number of simulation workers and after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from task.seeding import stream_rng

# A failing profile query is not injected: the server could not tell which partition's
# device failed (only the train messages name it), so its record would depend on node ids.
PROFILE_FAULTS = ("negative", "nan")
TRAIN_FAULTS = (
    "exception",
    "missing-key",
    "wrong-shape",
    "wrong-dtype",
    "nan",
    "inf",
    "wrong-batch",
)
FAULTS = {"profile": PROFILE_FAULTS, "train": TRAIN_FAULTS}


class InjectedFault(RuntimeError):  # noqa: N818 (the name says what it is)
    """The exception an injected ``exception`` fault raises in the ClientApp."""


def draw_fault(
    phase: str, rate: float, seed: int, partition_id: int, server_round: int
) -> tuple[str | None, np.random.Generator]:
    """Return the fault of a ``phase`` reply (None: sound) and the stream that shapes it.

    ``phase`` is ``"profile"`` or ``"train"`` (:data:`FAULTS`).
    """
    rng = stream_rng(f"client.faults.{phase}", seed, partition_id, server_round)
    if rng.random() >= rate:
        return None, rng
    kinds = FAULTS[phase]
    return kinds[int(rng.integers(len(kinds)))], rng


def inject_profile(
    report: dict[str, Any], config: Mapping[str, Any], server_round: int
) -> dict[str, Any]:
    """Return ``report`` with one number made negative or NaN, at the rate of ``config``.

    ``config`` is the run config (``inject-faults``, ``seed``).
    """
    pid = int(report["partition-id"])
    kind, rng = draw_fault("profile", config["inject-faults"], config["seed"], pid, server_round)
    return report if kind is None else corrupt_profile(kind, report, rng)


def corrupt_profile(kind: str, report: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Return ``report`` with a number, picked with ``rng``, made ``negative`` or ``nan``."""
    numbers = sorted(
        key
        for key, value in report.items()
        if key != "partition-id" and type(value) in (int, float)
    )
    key = numbers[int(rng.integers(len(numbers)))]
    value = -abs(report[key]) - 1.0 if kind == "negative" else math.nan
    return {**report, key: value}


def inject_train(
    update: dict[str, np.ndarray],
    metrics: dict[str, Any],
    config: Mapping[str, Any],
    server_round: int,
    weight_key: str = "batch-size",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return the update arrays and metrics with a fault injected at the rate of ``config``.

    ``missing-key`` drops one array or metric, ``wrong-shape`` appends an element to one
    array, ``wrong-dtype`` makes one float64, ``nan``/``inf`` poison one element of a float
    array and ``wrong-batch`` reports one example more than assigned in ``weight_key``.

    Raises
    ------
    InjectedFault
        For an ``exception`` fault.
    """
    pid = int(metrics["partition-id"])
    kind, rng = draw_fault("train", config["inject-faults"], config["seed"], pid, server_round)
    if kind is None:
        return update, metrics
    return corrupt_train(kind, update, metrics, rng, weight_key)


def corrupt_train(
    kind: str,
    update: dict[str, np.ndarray],
    metrics: dict[str, Any],
    rng: np.random.Generator,
    weight_key: str = "batch-size",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return the train reply's update and metrics with fault ``kind`` (see :func:`inject_train`).

    Raises
    ------
    InjectedFault
        For an ``exception`` fault.
    """
    pid = metrics["partition-id"]
    if kind == "exception":
        raise InjectedFault(f"injected fault: training failed on partition {pid}")
    if kind == "wrong-batch":
        return update, {**metrics, weight_key: metrics[weight_key] + 1}
    if kind == "missing-key":
        names = [*update, weight_key, "train-loss"]
        dropped = names[int(rng.integers(len(names)))]
        return _without(update, dropped), _without(metrics, dropped)
    floats = sorted(name for name, array in update.items() if array.dtype.kind == "f")
    name = floats[int(rng.integers(len(floats)))]
    if kind == "wrong-shape":
        corrupt = np.append(update[name], np.zeros(1, update[name].dtype))
    elif kind == "wrong-dtype":
        corrupt = update[name].astype(np.float64)
    else:
        corrupt = update[name].copy()
        corrupt.flat[int(rng.integers(corrupt.size))] = math.nan if kind == "nan" else math.inf
    return {**update, name: corrupt}, metrics


def _without(values: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != key}
