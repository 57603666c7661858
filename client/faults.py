"""Seeded fault injection: devices that fail or send corrupt replies (run-config ``inject-faults``).

With rate r, each reply of each device is faulty with probability r, independently per
device, round and message kind, and the kind of fault is drawn uniformly. The draws come
from :func:`task.seeding.stream_rng` keyed by (seed, partition id, round), so a run injects
the same faults whatever the number of simulation workers and after a resume. A train
fault corrupts the update as it is sent: below 32 bits its encoded parts
(:class:`~task.codec.EncodedTensor`), which the server's decoder then rejects.

One chosen device may attack instead (run-config ``attacker``, its partition id): in every
round it sends the fault ``attack`` (:data:`ATTACKS`), which no check of a single reply can
tell from a sound one: its update times ``attack-scale`` (``scaled-gradient``), a profile
claiming a fast CPU and a perfect channel (``lying-profile``), from round 2 on a report in
the name of the next device's partition (``foreign-partition``), as a device that takes
another's identity after it enrolled, or its BatchNorm statistics times ``attack-scale``
(``huge-statistics``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from task.codec import EncodedTensor
from task.protocol import NUM_PARTITIONS
from task.seeding import stream_rng

# An update as sent: float32 arrays, or below 32 bits encoded tensors.
Update = Mapping[str, np.ndarray] | Mapping[str, EncodedTensor]

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
# The attacker's faults (task.names.ATTACKS) and the part of a reply each corrupts.
ATTACKS = {
    "scaled-gradient": "train",
    "lying-profile": "profile",
    "foreign-partition": "profile",
    "huge-statistics": "statistics",
}
# The report's keys that say which partition it is for, which faults leave sound.
IDENTITY_KEYS = ("partition-id", NUM_PARTITIONS)
# What a lying profile claims: a 1 THz CPU clock and a 0 dB path gain.
LYING_PROFILE = {"cpu-hz": 1e12, "path-gain": 1.0}


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


def attack_of(phase: str, config: Mapping[str, Any], partition_id: int) -> str | None:
    """Return the attack on the ``phase`` of a reply of ``partition_id`` (None: no attack).

    ``phase`` is ``"profile"``, ``"train"`` (the update and metrics) or ``"statistics"``
    (the BatchNorm statistics of a train reply); ``config`` is the run config
    (``attacker``, ``attack``).
    """
    if partition_id != config["attacker"] or ATTACKS[config["attack"]] != phase:
        return None
    return config["attack"]


def chosen_fault(
    phase: str, config: Mapping[str, Any], partition_id: int, server_round: int
) -> tuple[str | None, np.random.Generator]:
    """Return the fault of a ``phase`` reply: the attacker's, else :func:`draw_fault`'s."""
    rate, seed = config["inject-faults"], config["seed"]
    kind, rng = draw_fault(phase, rate, seed, partition_id, server_round)
    return attack_of(phase, config, partition_id) or kind, rng


def inject_profile(
    report: dict[str, Any], config: Mapping[str, Any], server_round: int
) -> dict[str, Any]:
    """Return ``report`` with one number made negative or NaN, at the rate of ``config``.

    ``config`` is the run config (``inject-faults``, ``seed``); the attacker's report lies
    (:func:`chosen_fault`).
    """
    kind, rng = chosen_fault("profile", config, int(report["partition-id"]), server_round)
    if kind == "foreign-partition":
        return foreign_partition(report) if server_round > 1 else report
    return report if kind is None else corrupt_profile(kind, report, rng)


def foreign_partition(report: dict[str, Any]) -> dict[str, Any]:
    """Return ``report`` in the name of the next partition, (id + 1) mod K."""
    pid, count = int(report["partition-id"]), int(report[NUM_PARTITIONS])
    return {**report, "partition-id": (pid + 1) % count}


def corrupt_profile(kind: str, report: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Return ``report`` with a number, picked with ``rng``, made ``negative`` or ``nan``.

    A ``lying-profile`` claims :data:`LYING_PROFILE` instead, of the keys the report has (a
    GPU device has no CPU clock to lie about).
    """
    if kind == "lying-profile":
        return {**report, **{k: v for k, v in LYING_PROFILE.items() if k in report}}
    numbers = sorted(
        key
        for key, value in report.items()
        if key not in IDENTITY_KEYS and type(value) in (int, float)
    )
    key = numbers[int(rng.integers(len(numbers)))]
    value = -abs(report[key]) - 1.0 if kind == "negative" else math.nan
    return {**report, key: value}


def inject_train(
    update: Update,
    metrics: dict[str, Any],
    config: Mapping[str, Any],
    server_round: int,
    weight_key: str = "batch-size",
) -> tuple[Update, dict[str, Any]]:
    """Return the sent update and the metrics with a fault injected at the rate of ``config``.

    ``missing-key`` drops one tensor or metric, ``wrong-shape`` appends an element to one
    array, ``wrong-dtype`` widens one (float64, or uint16 levels), ``nan``/``inf`` poison one
    element of a float array and ``wrong-batch`` reports one example more than assigned in
    ``weight_key``. Of an encoded tensor the array is its packed levels or its floats, and
    ``nan``/``inf`` poison a float (a scale, a low or a step). The attacker's
    ``scaled-gradient`` multiplies every float by ``attack-scale`` (:func:`scaled_update`).

    Raises
    ------
    InjectedFault
        For an ``exception`` fault.
    """
    kind, rng = chosen_fault("train", config, int(metrics["partition-id"]), server_round)
    if kind is None:
        return update, metrics
    if kind == "scaled-gradient":
        return scaled_update(update, config["attack-scale"]), metrics
    return corrupt_train(kind, update, metrics, rng, weight_key)


def inject_statistics(
    buffers: Mapping[str, np.ndarray], config: Mapping[str, Any], partition_id: int
) -> Mapping[str, np.ndarray]:
    """Return a train reply's ``buffers``; a ``huge-statistics`` attacker's times ``attack-scale``.

    The BatchNorm statistics (or their change) stay finite at the default scale, 1e30, and
    the variances non-negative, so that the reply passes every check of a single reply.
    """
    if attack_of("statistics", config, partition_id) is None:
        return buffers
    return scaled_update(buffers, config["attack-scale"])


def scaled_update(update: Update, scale: float) -> Update:
    """Return ``update`` times ``scale``: its float arrays, or an encoded tensor's floats.

    The floats of an encoded tensor (its low and step, or its scale) set the decoded
    values' scale (:mod:`task.codec`). Values beyond float32 become inf.
    """
    with np.errstate(over="ignore"):
        return {
            name: dataclasses.replace(value, floats=_times(value.floats, scale))
            if isinstance(value, EncodedTensor)
            else _times(value, scale)
            for name, value in update.items()
        }


def _times(array: np.ndarray, scale: float) -> np.ndarray:
    """Return a float ``array`` times ``scale`` in its dtype; any other array as it is."""
    if array.dtype.kind != "f":
        return array
    return (array * np.asarray(scale, dtype=array.dtype)).astype(array.dtype)


def corrupt_train(
    kind: str,
    update: Update,
    metrics: dict[str, Any],
    rng: np.random.Generator,
    weight_key: str = "batch-size",
) -> tuple[Update, dict[str, Any]]:
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
    floats = sorted(name for name, value in update.items() if _has_floats(value))
    name = floats[int(rng.integers(len(floats)))]
    value = update[name]
    if isinstance(value, EncodedTensor):
        part = "floats" if kind in ("nan", "inf") else ("packed", "floats")[int(rng.integers(2))]
        corrupt = dataclasses.replace(value, **{part: _corrupt(kind, getattr(value, part), rng)})
    else:
        corrupt = _corrupt(kind, value, rng)
    return {**update, name: corrupt}, metrics


def _has_floats(value: np.ndarray | EncodedTensor) -> bool:
    """Whether ``value`` is a float array or an encoded tensor (which holds floats)."""
    return isinstance(value, EncodedTensor) or value.dtype.kind == "f"


def _corrupt(kind: str, array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return ``array`` with one more element, widened, or with a NaN or inf element."""
    if kind == "wrong-shape":
        return np.append(array, np.zeros(1, array.dtype))
    if kind == "wrong-dtype":
        return array.astype(np.float64 if array.dtype.kind == "f" else np.uint16)
    corrupt = array.copy()
    corrupt.flat[int(rng.integers(corrupt.size))] = math.nan if kind == "nan" else math.inf
    return corrupt


def _without(values: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != key}
