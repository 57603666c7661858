"""Scheduling instances: the JSON input contract, validated, held as numpy arrays."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scheduler.channel import ChannelParams
from scheduler.latency import compute_s, downlink_airtime_s, update_s, uplink_airtime_s

SCENARIOS = ("cpu", "gpu")
DEVICE_FIELDS = {
    "cpu": ("uplink_rate_bps", "downlink_rate_bps", "cpu_hz", "cycles_per_sample", "update_cycles"),
    "gpu": (
        "uplink_rate_bps",
        "downlink_rate_bps",
        "latency_floor_s",
        "latency_slope_s",
        "batch_threshold",
        "update_s",
    ),
}
# Fields that must be strictly positive; the other device fields must be >= 0.
_POSITIVE = {"uplink_rate_bps", "downlink_rate_bps", "cpu_hz", "cycles_per_sample"}
# The energy model's fields (scheduler.energy).
_ENERGY_FIELDS = ("uplink_power_w", "effective_capacitance", "gpu_power_w", "idle_power_w")
_TOP_FIELDS = (
    "scenario",
    "gradient_bits",
    "uplink_frame_s",
    "downlink_frame_s",
    "min_batch",
    "max_batch",
    "devices",
    *_ENERGY_FIELDS,
)
# kappa: alpha_n / 2 = 2e-28 of Tran et al., "Federated learning over wireless networks:
# optimization model design and analysis" (INFOCOM 2019), the paper's ref. [27].
EFFECTIVE_CAPACITANCE = 2e-28
# P_k^U: Table I's transmit power, 28 dBm.
UPLINK_POWER_W = ChannelParams().tx_power_w
# The board power of the paper's GPU (Sec. VI-D), an NVIDIA GeForce GTX 1080 Ti.
GPU_POWER_W = 250.0
_DEFAULTS: dict[str, Any] = {
    "uplink_frame_s": 0.01,
    "downlink_frame_s": 0.01,
    "min_batch": 1,
    "max_batch": 128,
    "uplink_power_w": UPLINK_POWER_W,
    "effective_capacitance": EFFECTIVE_CAPACITANCE,
    "gpu_power_w": GPU_POWER_W,
    "idle_power_w": 0.0,
}


# Largest ratio of a device's longest latency to the shortest airtime that double precision
# resolves to ~1e-7 (the scheduler subtracts latencies of that size from each other).
MAX_TIME_RATIO = 1e9


class InstanceError(ValueError):
    """An invalid instance; ``field`` is the JSON path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _number(value: Any, field: str, *, positive: bool) -> float:
    """Return ``value`` as a finite float, or raise naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InstanceError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InstanceError(field, f"must be finite, got {value!r}")
    if positive and value <= 0:
        raise InstanceError(field, f"must be > 0, got {value!r}")
    if value < 0:
        raise InstanceError(field, f"must be >= 0, got {value!r}")
    return float(value)


def _integer(value: Any, field: str) -> int:
    """Return ``value`` as an int >= 1, or raise naming ``field``."""
    number = _number(value, field, positive=True)
    if number != int(number) or number < 1:
        raise InstanceError(field, f"must be a whole number >= 1, got {value!r}")
    return int(number)


def _check_keys(given: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    """Raise for the first unknown or missing key of ``given``."""
    for key in given:
        if key not in allowed:
            raise InstanceError(f"{prefix}{key}", "unknown field")
    for key in allowed:
        if key not in given:
            raise InstanceError(f"{prefix}{key}", "missing field")


@dataclass(frozen=True, eq=False)
class Instance:
    """One round's scheduling problem (problem P1 for CPUs, P6 for GPUs).

    Attributes
    ----------
    scenario
        ``"cpu"`` (Eq. 9, 12) or ``"gpu"`` (Assumption 1, Eq. 27-28).
    gradient_bits
        Size s = b * p of one gradient in bits (Sec. III-B).
    devices
        Per-device fields of the scenario (``DEVICE_FIELDS``), each a float array of length K.
    uplink_frame_s, downlink_frame_s
        TDMA frame lengths T_f^U and T_f^D.
    min_batch, max_batch
        Bounds of every device's batch size (17e).
    uplink_power_w
        Transmit power P_k^U of the devices (:mod:`scheduler.energy`).
    effective_capacitance
        kappa of a CPU's computation energy kappa C B f^2.
    gpu_power_w
        Board power of a GPU while it computes.
    idle_power_w
        Power of a device that listens idle, for the rest of the round (0: not counted).
    """

    scenario: str
    gradient_bits: float
    devices: dict[str, np.ndarray]
    uplink_frame_s: float = 0.01
    downlink_frame_s: float = 0.01
    min_batch: int = 1
    max_batch: int = 128
    uplink_power_w: float = UPLINK_POWER_W
    effective_capacitance: float = EFFECTIVE_CAPACITANCE
    gpu_power_w: float = GPU_POWER_W
    idle_power_w: float = 0.0

    @property
    def num_devices(self) -> int:
        """Number of devices K."""
        return len(self.devices["uplink_rate_bps"])

    @classmethod
    def from_dict(cls, data: Any) -> Instance:
        """Validate the JSON instance contract and build an instance.

        Raises
        ------
        InstanceError
            Naming the field (``devices[3].cpu_hz``) and the bad value.
        """
        if not isinstance(data, Mapping):
            raise InstanceError("instance", f"must be a JSON object, got {type(data).__name__}")
        data = {**_DEFAULTS, **data}
        _check_keys(data, _TOP_FIELDS, "")
        scenario = data["scenario"]
        if scenario not in SCENARIOS:
            raise InstanceError(
                "scenario", f"must be one of {', '.join(SCENARIOS)}, got {scenario!r}"
            )
        min_batch = _integer(data["min_batch"], "min_batch")
        max_batch = _integer(data["max_batch"], "max_batch")
        if min_batch > max_batch:
            raise InstanceError("min_batch", f"must be <= max_batch ({max_batch}), got {min_batch}")
        devices = data["devices"]
        if not isinstance(devices, list) or not devices:
            raise InstanceError("devices", f"must be a non-empty list, got {devices!r}")
        instance = cls(
            scenario=scenario,
            gradient_bits=_number(data["gradient_bits"], "gradient_bits", positive=True),
            devices=_device_arrays(devices, DEVICE_FIELDS[scenario]),
            uplink_frame_s=_number(data["uplink_frame_s"], "uplink_frame_s", positive=True),
            downlink_frame_s=_number(data["downlink_frame_s"], "downlink_frame_s", positive=True),
            min_batch=min_batch,
            max_batch=max_batch,
            **{name: _number(data[name], name, positive=False) for name in _ENERGY_FIELDS},
        )
        _check_time_scales(instance)
        return instance

    def subset(self, indices: Any) -> Instance:
        """Return the instance restricted to the devices at ``indices`` (in that order)."""
        picked = np.asarray(indices, dtype=np.int64)
        return replace(self, devices={f: v[picked] for f, v in self.devices.items()})

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON instance contract for this instance."""
        fields = DEVICE_FIELDS[self.scenario]
        return {
            "scenario": self.scenario,
            "gradient_bits": self.gradient_bits,
            "uplink_frame_s": self.uplink_frame_s,
            "downlink_frame_s": self.downlink_frame_s,
            "min_batch": self.min_batch,
            "max_batch": self.max_batch,
            "uplink_power_w": self.uplink_power_w,
            "effective_capacitance": self.effective_capacitance,
            "gpu_power_w": self.gpu_power_w,
            "idle_power_w": self.idle_power_w,
            "devices": [
                {f: float(self.devices[f][k]) for f in fields} for k in range(self.num_devices)
            ],
        }


def _device_arrays(devices: list[Any], fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Validate every device record and stack each field into an array."""
    columns: dict[str, list[float]] = {f: [] for f in fields}
    for k, device in enumerate(devices):
        prefix = f"devices[{k}]."
        if not isinstance(device, Mapping):
            raise InstanceError(f"devices[{k}]", f"must be a JSON object, got {device!r}")
        _check_keys(device, fields, prefix)
        for f in fields:
            columns[f].append(_number(device[f], prefix + f, positive=f in _POSITIVE))
    return {f: np.asarray(v, dtype=float) for f, v in columns.items()}


def _check_time_scales(instance: Instance) -> None:
    """Reject instances whose latencies span more than double precision can resolve."""
    airtime = np.concatenate([uplink_airtime_s(instance), downlink_airtime_s(instance)])
    longest = np.maximum(
        compute_s(instance, np.full(instance.num_devices, instance.max_batch)), update_s(instance)
    )
    longest = np.maximum(longest, airtime.reshape(2, -1).max(axis=0))
    k, shortest = int(np.argmax(longest)), float(airtime.min())
    if longest[k] > MAX_TIME_RATIO * shortest:
        raise InstanceError(
            f"devices[{k}]",
            f"its latency {longest[k]:.3g} s is over {MAX_TIME_RATIO:.0e} times the shortest "
            f"airtime {shortest:.3g} s: out of the range the scheduler resolves",
        )
