"""Checks on what a device sends back: its profile report and its train reply.

A faulty device (a bug, a bad sensor, a corrupted upload) must not poison the global model
or the schedule: every reply is checked before it is used, and a reply that fails a check
raises :class:`ReplyError`, whose message says what is wrong. The strategy then leaves the
device out of the round (``RoundRecord.excluded``) and, when fewer than ``min-devices``
remain, stops with :class:`TooFewDevicesError` before the round is applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, MetricRecord, RecordDict

from scheduler import Instance
from strategy.instance import COMPUTE_FIELDS, InstanceSettings, build_instance
from task.arrays import array_view

# Profile keys every report needs besides the scenario's compute fields (message contract).
PROFILE_NUMBERS = ("partition-id", "num-examples", "path-gain", "fading-up", "fading-down")
# Profile numbers that must be whole.
PROFILE_INTEGERS = ("partition-id", "num-examples")


class ReplyError(ValueError):
    """A device's reply that cannot be used; the message is the reason it is excluded."""


class TooFewDevicesError(RuntimeError):
    """Fewer than ``min-devices`` usable devices are left in a round: it is not applied."""


@dataclass(frozen=True)
class CheckedUpdate:
    """The usable parts of a train reply.

    Attributes
    ----------
    weight
        The reported batch size (or local dataset size), equal to the assigned one.
    loss
        Finite training loss.
    arrays
        The update (gradient or model): finite arrays with the global model's shapes and dtypes.
    buffers
        BatchNorm statistics, checked like ``arrays``; empty when not sent.
    """

    weight: int
    loss: float
    arrays: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]


def error_summary(reason: str) -> str:
    """Return the gist of an error reply's reason: the exception's message.

    In simulation the reason is a Ray traceback naming the actor, its pid and the app's
    temporary path; its last line holds Flower's ``... occurred. Message: <message>``. The
    gist is the same in every run, so ``rounds.jsonl`` does not depend on the workers.
    """
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    last = lines[-1] if lines else reason
    _, found, message = last.partition("occurred. Message: ")
    return message.removesuffix("'>") if found else last


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_profile(report: Mapping[str, Any], settings: InstanceSettings) -> None:
    """Check a ``query.profile`` report before it is scheduled.

    Every number must be present, finite and non-negative; ids and dataset sizes whole; the
    device must hold at least ``min_batch`` examples; and the report must make a valid
    one-device scheduling instance (the scheduler's own checks: scenario, positive rates and
    clocks, latencies in range).

    Raises
    ------
    ReplyError
        Naming the first bad key and its value.
    """
    for key in (*PROFILE_NUMBERS, *COMPUTE_FIELDS[settings.scenario].values()):
        if key not in report:
            raise ReplyError(f"profile lacks {key!r}")
        value = report[key]
        if not _is_number(value):
            raise ReplyError(f"profile {key!r} is not a number: {value!r}")
        if not math.isfinite(value):
            raise ReplyError(f"profile {key!r} is not finite: {value!r}")
        if value < 0:
            raise ReplyError(f"profile {key!r} is negative: {value!r}")
        if key in PROFILE_INTEGERS and value != int(value):
            raise ReplyError(f"profile {key!r} is not a whole number: {value!r}")
    if report["num-examples"] < settings.min_batch:
        raise ReplyError(
            f"holds {report['num-examples']} examples, fewer than min-batch {settings.min_batch}"
        )
    try:
        Instance.from_dict(build_instance([report], settings))
    except ValueError as exc:
        raise ReplyError(f"profile: {exc}") from None


def _decoded(record: ArrayRecord, what: str) -> dict[str, np.ndarray]:
    """Return the arrays of ``record``; raise if one does not decode."""
    arrays = {}
    for name, array in record.items():
        try:
            arrays[name] = array_view(array)
        except (ValueError, TypeError) as exc:
            raise ReplyError(f"{what} {name!r} does not decode: {exc}") from None
    return arrays


def _check_arrays(
    arrays: Mapping[str, np.ndarray], model: Mapping[str, np.ndarray], what: str
) -> None:
    """Check that each array matches the model's array of its name and is finite."""
    for name, array in arrays.items():
        if name not in model:
            raise ReplyError(f"{what} has unknown array {name!r}")
        expected = model[name]
        if array.shape != expected.shape:
            raise ReplyError(f"{what} {name!r} has shape {array.shape}, expected {expected.shape}")
        if array.dtype != expected.dtype:
            raise ReplyError(f"{what} {name!r} has dtype {array.dtype}, expected {expected.dtype}")
        if not np.all(np.isfinite(array)):
            raise ReplyError(f"{what} {name!r} holds NaN or inf values")


def _record(content: RecordDict, key: str, kind: type) -> Any:
    """Return ``content[key]`` if it is a record of type ``kind``."""
    if key not in content:
        raise ReplyError(f"reply lacks {key!r}")
    record = content[key]
    if not isinstance(record, kind):
        raise ReplyError(f"reply {key!r} is a {type(record).__name__}, not a {kind.__name__}")
    return record


def _metric(metrics: MetricRecord, key: str) -> float:
    """Return metric ``key``: present, a number and finite."""
    if key not in metrics:
        raise ReplyError(f"metrics lack {key!r}")
    value = metrics[key]
    if not _is_number(value) or not math.isfinite(value):
        raise ReplyError(f"metric {key!r} is not a finite number: {value!r}")
    return value


def check_train_reply(
    content: RecordDict,
    model: Mapping[str, np.ndarray],
    *,
    update_key: str,
    weight_key: str,
    assigned: int,
) -> CheckedUpdate:
    """Check a train reply against the global model the device was sent.

    The update record ``update_key`` (``grads`` or a local model) and the optional
    ``buffers`` record must together hold every array of ``model`` once, each with its
    shape and dtype and only finite values; ``metrics`` must hold a finite ``train-loss``
    and ``weight_key`` equal to ``assigned``.

    Parameters
    ----------
    content
        The reply's content.
    model
        The global model's arrays sent with the train message.
    update_key
        Name of the update's array record.
    weight_key
        Metric that weighs the update (``batch-size``, ``num-examples``).
    assigned
        The value ``weight_key`` must have: the batch the device was assigned.

    Raises
    ------
    ReplyError
        Saying what is wrong, with the key and the value.
    """
    metrics = _record(content, "metrics", MetricRecord)
    weight = _metric(metrics, weight_key)
    if weight != assigned:
        raise ReplyError(f"{weight_key} {weight!r}, but {assigned} was assigned")
    loss = _metric(metrics, "train-loss")
    arrays = _decoded(_record(content, update_key, ArrayRecord), update_key)
    buffers = (
        _decoded(_record(content, "buffers", ArrayRecord), "buffers")
        if "buffers" in content
        else {}
    )
    _check_arrays(arrays, model, update_key)
    _check_arrays(buffers, model, "buffers")
    both = sorted(set(arrays) & set(buffers))
    if both:
        raise ReplyError(f"{both[0]!r} is in both {update_key} and buffers")
    missing = sorted(set(model) - set(arrays) - set(buffers))
    if missing:
        raise ReplyError(f"{update_key} lacks {missing[0]!r}")
    return CheckedUpdate(int(weight), float(loss), arrays, buffers)
