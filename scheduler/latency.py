"""Latency model of one communication round (Sec. III-B and V-B)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy
from numpy.typing import ArrayLike


class InstanceLike(Protocol):
    """What the latency model reads of a scheduling instance (:class:`scheduler.Instance`).

    A protocol rather than the class itself: the instance checks its own time scales with
    this model, so the model does not import it.
    """

    scenario: str
    gradient_bits: float
    min_batch: int
    max_batch: int
    devices: Mapping[str, np.ndarray]

    @property
    def num_devices(self) -> int:
        """Number of devices K."""


def compute_s(instance: InstanceLike, batches: ArrayLike) -> np.ndarray:
    """Local gradient computation latency of each device for ``batches``.

    CPU: B_k C / f_k (Eq. 9). GPU: flat t_l up to B_th, then t_l + c (B_k - B_th) (Eq. 27).
    """
    b = np.asarray(batches, dtype=float)
    d = instance.devices
    if instance.scenario == "cpu":
        return b * d["cycles_per_sample"] / d["cpu_hz"]
    excess = np.maximum(b - d["batch_threshold"], 0.0)
    return d["latency_floor_s"] + d["latency_slope_s"] * excess


def update_s(instance: InstanceLike) -> np.ndarray:
    """Local model update latency: M / f_k (Eq. 12) or the measured GPU update time (Eq. 28)."""
    d = instance.devices
    if instance.scenario == "cpu":
        return d["update_cycles"] / d["cpu_hz"]
    return d["update_s"].copy()


def uplink_airtime_s(instance: InstanceLike) -> np.ndarray:
    """Upload time s / R_k^U with the whole frame, so that Eq. (10) is airtime / slot fraction."""
    return instance.gradient_bits / instance.devices["uplink_rate_bps"]


def downlink_airtime_s(instance: InstanceLike) -> np.ndarray:
    """Download time s / R_k^D with the whole frame (Eq. 11 with tau_k^D = T_f^D)."""
    return instance.gradient_bits / instance.devices["downlink_rate_bps"]


@dataclass(frozen=True)
class LinearCompute:
    """Compute latency as offset + per_sample * B on the batch range where the optimum lies.

    CPU devices are linear on [min_batch, max_batch] (Eq. 9). GPU devices are restricted to
    the compute-bound region B >= B_th (Lemma 2), where Eq. (27) is linear; a device whose
    threshold is at or above max_batch is flat, so its batch is max_batch at no cost.
    """

    offset_s: np.ndarray
    per_sample_s: np.ndarray
    lower: np.ndarray
    upper: float


def linear_compute(instance: InstanceLike) -> LinearCompute:
    """Return the linear compute model of ``instance`` and its batch bounds.

    A device whose whole batch range costs under 1e-12 of its upload airtime gets its
    largest batch as lower bound too: a batch it computes for free is always at the maximum,
    and so the searches never need to resolve such a device's compute time. Its compute is
    modelled flat, at its latency for that batch (per-sample time 0).
    """
    d, k, hi = instance.devices, instance.num_devices, float(instance.max_batch)
    if instance.scenario == "cpu":
        offset = np.zeros(k)
        per_sample = d["cycles_per_sample"] / d["cpu_hz"]
        lower = np.full(k, float(instance.min_batch))
    else:
        threshold = d["batch_threshold"]
        sloped = threshold < hi
        per_sample = np.where(sloped, d["latency_slope_s"], 0.0)
        offset = np.where(
            sloped, d["latency_floor_s"] - per_sample * threshold, d["latency_floor_s"]
        )
        lower = np.clip(threshold, instance.min_batch, hi)
    free = per_sample * (hi - lower) <= 1e-12 * uplink_airtime_s(instance)
    offset = np.where(free, offset + per_sample * hi, offset)
    per_sample = np.where(free, 0.0, per_sample)
    return LinearCompute(offset, per_sample, np.where(free, hi, lower), hi)


def min_max_finish(ready_s: np.ndarray, airtime_s: np.ndarray) -> tuple[float, np.ndarray]:
    """Share one TDMA frame so that every device finishes as early as possible.

    Device k is ready to transmit at ``ready_s[k]`` and needs ``airtime_s[k]`` seconds of the
    whole channel; with a frame fraction x_k it finishes at ready_k + airtime_k / x_k. The
    common finish time T solves sum_k airtime_k / (T - ready_k) = 1 (Theorem 2, Eq. 26, and
    Theorem 1 for fixed batches). It lies in [max_k(ready_k + airtime_k),
    max_k ready_k + sum_k airtime_k].

    Returns
    -------
    finish_s, fractions
        T and the frame fractions x_k (summing to 1).
    """
    lo = float(np.max(ready_s + airtime_s))
    hi = float(np.max(ready_s) + np.sum(airtime_s))

    def overfill(t: float) -> float:
        return float(np.sum(airtime_s / (t - ready_s))) - 1.0

    if overfill(hi) >= 0:  # equal devices: the root is the upper end, up to rounding
        finish = hi
    elif overfill(lo) <= 0:  # one device alone, or all others negligible
        finish = lo
    else:
        finish = scipy.optimize.brentq(overfill, lo, hi, xtol=1e-15 * hi, rtol=1e-15)
    fractions = airtime_s / (finish - ready_s)
    return finish, fractions / np.sum(fractions)  # fill the frame exactly despite rounding
