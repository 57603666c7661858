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
from logging import WARNING
from typing import Any

import numpy as np
from flwr.supercore import log

from scheduler import Instance
from scheduler.channel import path_gain
from strategy.instance import InstanceSettings, ProfileBounds, build_instance
from task.batchnorm import VARIANCE
from task.protocol import (
    BUFFERS,
    TRAIN_GRADIENT,
    UPDATE_KEYS,
    WEIGHT_KEYS,
    ProfileReport,
    ReplyError,
    TrainReply,
)
from task.system_model import Workload

# The characters of an exclusion reason that are logged and kept in rounds.jsonl.
REASON_CHARS = 200


class TooFewDevicesError(RuntimeError):
    """Fewer than ``min-devices`` usable devices are left in a round: it is not applied."""


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


def check_profile(report: Mapping[str, Any], settings: InstanceSettings) -> ProfileReport:
    """Decode a ``query.profile`` report and check it before it is scheduled.

    Its numbers must be sound (:meth:`~task.protocol.ProfileReport.from_fields`) and
    plausible (:func:`implausible`), the device must hold at least ``min_batch`` examples,
    and the report must make a valid
    one-device scheduling instance (the scheduler's own checks: scenario, positive rates and
    clocks, latencies in range).

    Raises
    ------
    ReplyError
        Naming the first bad key and its value.
    """
    decoded = ProfileReport.from_fields(report, settings.scenario)
    if decoded.num_examples < settings.min_batch:
        raise ReplyError(
            f"holds {decoded.num_examples} examples, fewer than min-batch {settings.min_batch}"
        )
    problem = implausible(decoded, settings)
    if problem is not None:
        raise ReplyError(f"implausible profile: {problem}")
    try:
        Instance.from_dict(build_instance([decoded], settings))
    except ValueError as exc:
        raise ReplyError(f"profile: {exc}") from None
    return decoded


def implausible(report: ProfileReport, settings: InstanceSettings) -> str | None:
    """Say which of a report's numbers lies outside the settings' bounds, None if none does.

    The bounds (:class:`~strategy.instance.ProfileBounds`): the CPU clock, the path gain
    against Table I's at the nearest and the farthest distance, the fading samples, the GPU
    latency floor and batch threshold of Eq. (27), and the FLOPs per cycle or per second
    the compute profile claims (:func:`compute_problem`).
    """
    bounds = settings.bounds
    nearest = float(path_gain(bounds.min_distance_m))
    upper = {
        "path-gain": (report.path_gain, nearest),
        "fading-up": (report.fading_up, bounds.max_fading),
        "fading-down": (report.fading_down, bounds.max_fading),
        "cpu-hz": (report.compute.get("cpu-hz", 0.0), bounds.max_cpu_hz),
        "batch-threshold": (report.compute.get("batch-threshold", 0.0), settings.max_batch),
    }
    for key, (value, bound) in upper.items():
        if value > bound:
            return f"{key} {value!r} exceeds {bound:g}"
    farthest = float(path_gain(bounds.max_distance_m))
    if report.path_gain < farthest:
        return f"path-gain {report.path_gain!r} is below {farthest:g}"
    floor = report.compute.get("latency-floor-s", bounds.min_gpu_floor_s)
    if floor < bounds.min_gpu_floor_s:
        return f"latency-floor-s {floor!r} is below {bounds.min_gpu_floor_s:g}"
    return compute_problem(report.compute, settings)


def compute_problem(compute: Mapping[str, float], settings: InstanceSettings) -> str | None:
    """Say which compute claim is faster or slower than the bounds allow, None if none is.

    Of the model's FLOPs (the settings' ``workload``; none: nothing is checked), a CPU
    device's cycles per sample C (Eq. (9)) and per update M^C (Eq. (12)) may do at most
    ``max_flops_per_cycle`` per cycle and at least ``min_flops`` per second at its clock; a
    GPU device's latency of Eq. (27), at its batch threshold and at B^max, and its update
    latency of Eq. (28) at least ``min_flops`` and at most ``max_gpu_flops`` per second.
    """
    if settings.workload is None:
        return None
    if settings.scenario == "cpu":
        return _cpu_problem(compute, settings.workload, settings.bounds)
    return _gpu_problem(compute, settings.workload, settings)


def _cpu_problem(compute: Mapping[str, float], work: Workload, bounds: ProfileBounds) -> str | None:
    """Say which of C and M^C claims too many FLOPs per cycle or too few per second."""
    hz = compute["cpu-hz"]
    for key, flops in (
        ("cycles-per-sample", work.training_flops_per_sample),
        ("update-cycles", work.update_flops),
    ):
        per_cycle = _rate(flops, compute[key])
        if per_cycle > bounds.max_flops_per_cycle:
            return (
                f"{key} {compute[key]!r}: {per_cycle:g} FLOPs per cycle, above "
                f"max-flops-per-cycle {bounds.max_flops_per_cycle:g}"
            )
        if per_cycle * hz < bounds.min_flops:
            return _too_slow(f"{key} {compute[key]!r} at cpu-hz {hz:g}", per_cycle * hz, bounds)
    return None


def _gpu_problem(
    compute: Mapping[str, float], work: Workload, settings: InstanceSettings
) -> str | None:
    """Say which GPU latency claims too many or too few FLOPs per second."""
    floor, slope = compute["latency-floor-s"], compute["latency-slope-s"]
    threshold, update = compute["batch-threshold"], compute["update-s"]
    claims = {}
    for batch in (max(threshold, settings.min_batch), settings.max_batch):
        seconds = floor + slope * max(batch - threshold, 0.0)  # Eq. (27)
        claim = f"latency-floor-s and -slope-s: {seconds!r} s for a batch of {batch:g}"
        claims[claim] = _rate(batch * work.training_flops_per_sample, seconds)
    claims[f"update-s {update!r}"] = _rate(work.update_flops, update)
    bounds = settings.bounds
    for claim, rate in claims.items():
        if rate > bounds.max_gpu_flops:
            return f"{claim}: {rate:g} FLOP/s, above max-gpu-flops {bounds.max_gpu_flops:g}"
        if rate < bounds.min_flops:
            return _too_slow(claim, rate, bounds)
    return None


def _too_slow(claim: str, rate: float, bounds: ProfileBounds) -> str:
    """Say that ``claim`` computes at ``rate`` FLOP/s, below the bounds' ``min_flops``."""
    return f"{claim}: {rate:g} FLOP/s, below min-flops {bounds.min_flops:g}"


def _rate(flops: float, per: float) -> float:
    """Return ``flops`` per cycle or second; inf for none."""
    return flops / per if per > 0 else math.inf


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
        if problem := _value_problem(name, array, variances=False):
            raise ReplyError(f"{what} {problem}")


def _value_problem(name: str, array: np.ndarray, *, variances: bool) -> str | None:
    """Say what is wrong with the values of array ``name``, None if nothing is.

    They must be finite, and with ``variances`` a BatchNorm running variance not negative.
    """
    if not np.all(np.isfinite(array)):
        return f"{name!r} holds NaN or inf values"
    if variances and name.endswith(f".{VARIANCE}") and np.any(array < 0):
        return f"{name!r} holds a negative variance"
    return None


def check_update(
    reply: TrainReply, model: Mapping[str, np.ndarray], assigned: int, message_type: str
) -> None:
    """Check a decoded reply to a ``message_type`` train message against the model sent.

    The update (``grads`` or a local model) and the optional ``buffers`` must together hold
    every array of ``model`` once, each with its shape and dtype and only finite values (and,
    in a gradient reply, BatchNorm variances not negative), and the reported weight (``batch-size``,
    ``num-examples``) must equal ``assigned``.

    Raises
    ------
    ReplyError
        Saying what is wrong, with the key and the value.
    """
    update_key, weight_key = UPDATE_KEYS[message_type], WEIGHT_KEYS[message_type]
    if reply.weight != assigned:
        raise ReplyError(f"{weight_key} {reply.weight!r}, but {assigned} was assigned")
    _check_arrays(reply.update, model, update_key)
    _check_arrays(reply.buffers, model, BUFFERS)
    both = sorted(set(reply.update) & set(reply.buffers))
    if both:
        raise ReplyError(f"{both[0]!r} is in both {update_key} and buffers")
    missing = sorted(set(model) - set(reply.update) - set(reply.buffers))
    if missing:
        raise ReplyError(f"{update_key} lacks {missing[0]!r}")
    statistics = reply.buffers if message_type == TRAIN_GRADIENT else {}  # not model changes
    for name, array in statistics.items():
        if problem := _value_problem(name, array, variances=True):
            raise ReplyError(f"{BUFFERS} {problem}")


def bounded(reason: str) -> str:
    r"""Return ``reason`` on one line of at most ``REASON_CHARS`` characters.

    A reason may quote what a device sent (its error text, a bad value): characters that
    are not printable are escaped (a newline becomes ``\n``) and the rest is cut off.
    """
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in reason[: REASON_CHARS + 1])
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def aggregate_problem(model: Mapping[str, np.ndarray]) -> str | None:
    """Say what is wrong with a round's new global model, None if it may be applied.

    Every array must be finite, and every BatchNorm running variance not negative.
    """
    problems = (_value_problem(name, array, variances=True) for name, array in model.items())
    return next((problem for problem in problems if problem), None)


def exclude(excluded: dict[str, str], device: str, node_id: int, reason: str) -> None:
    """Record in ``excluded`` that ``device`` (on ``node_id``) is left out of the round; warn.

    The reason is :func:`bounded` first.
    """
    excluded[device] = reason = bounded(reason)
    log(WARNING, "round: device %s (node %d) excluded: %s", device, node_id, reason)
