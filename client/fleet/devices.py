"""Device profiles of Sec. VI-A: position in the cell and CPU or GPU compute capability."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.channel import path_gain
from scheduler.instances import CPU_HZ_TIERS
from task.errors import ConfigError
from task.seeding import stream_rng
from task.system_model import Workload

# CPU clocks of the three equal groups of devices, by partition id (Sec. VI-B).
# Devices are drawn uniformly in the annulus between this distance and the cell radius:
# PL = 128.1 + 37.6 log10(d[km]) models a macro cell and diverges at d -> 0.
MIN_DISTANCE_M = 10.0
POSITION_FIELDS = ("distance_m", "path_gain_db")


class FleetError(ConfigError):
    """A bad fleet file or device setting; ``field`` is e.g. ``devices[2].cpu_hz``."""


@dataclass(frozen=True)
class CpuProfile:
    """CPU device: f_k^C (Eq. (9)), C cycles per sample (Eq. (9)), M^C update cycles (Eq. (12))."""

    cpu_hz: float
    cycles_per_sample: float
    update_cycles: float


@dataclass(frozen=True)
class GpuProfile:
    """GPU device: t_k^l, c_k, B_k^th of Eq. (27) and the update latency M^G / f_k^G of Eq. (28)."""

    latency_floor_s: float
    latency_slope_s: float
    batch_threshold: float
    update_s: float


PROFILES: dict[str, type[CpuProfile] | type[GpuProfile]] = {"cpu": CpuProfile, "gpu": GpuProfile}
# Fields that must be > 0; the other compute fields must be >= 0 (as in the scheduler).
_POSITIVE = {"cpu_hz", "cycles_per_sample", "distance_m"}


def compute_fields(scenario: str) -> tuple[str, ...]:
    """Names of the compute fields of ``scenario`` (the scheduler's device fields)."""
    return tuple(f.name for f in dataclasses.fields(PROFILES[scenario]))


KNOWN_FIELDS = POSITION_FIELDS + compute_fields("cpu") + compute_fields("gpu")


@dataclass(frozen=True)
class Device:
    """One user device k.

    Attributes
    ----------
    partition_id
        The device's data partition (and index in the fleet).
    path_gain
        Linear large-scale channel gain of the up- and downlink (Sec. VI-A).
    distance_m
        Distance to the base station, or None when the gain was given directly.
    compute
        Compute capability for the CPU or GPU scenario.
    """

    partition_id: int
    path_gain: float
    distance_m: float | None
    compute: CpuProfile | GpuProfile

    @property
    def scenario(self) -> str:
        """``"cpu"`` or ``"gpu"``."""
        return "cpu" if isinstance(self.compute, CpuProfile) else "gpu"

    def fields(self) -> dict[str, float]:
        """Return the device as fleet-file fields: a position field and the compute fields."""
        position = (
            {"path_gain_db": 10.0 * math.log10(self.path_gain)}
            if self.distance_m is None
            else {"distance_m": self.distance_m}
        )
        return {**position, **dataclasses.asdict(self.compute)}


@dataclass(frozen=True)
class FleetConfig:
    """How the simulated fleet is drawn.

    Attributes
    ----------
    seed
        Seed of positions and fading.
    scenario
        ``"cpu"`` or ``"gpu"``.
    cell_radius_m
        Radius r of the cell (Table I).
    cycles_per_flop
        CPU cycles per FLOP: C = training FLOPs per sample x this, M^C = update FLOPs x this.
    gpu_flops
        Effective FLOP/s f^G of the slowest GPU tier; tiers run 1x, 2x, 3x as fast, in the
        ratios of :data:`CPU_HZ_TIERS`.
    gpu_batch_threshold
        B^th of Eq. (27): samples a GPU processes in parallel.
    gpu_overhead_s
        Fixed per-step time (kernel launches, transfers) of the slowest tier, part of t^l.
    """

    seed: int = 0
    scenario: str = "cpu"
    cell_radius_m: float = 200.0
    cycles_per_flop: float = 1.0
    gpu_flops: float = 1e12
    gpu_batch_threshold: float = 16.0
    gpu_overhead_s: float = 2e-3


def tier(partition_id: int, num_partitions: int) -> int:
    """Index of the partition's third of the fleet: 0, 1 or 2, equal groups by partition id."""
    return partition_id * len(CPU_HZ_TIERS) // num_partitions


def distance_m(partition_id: int, seed: int, cell_radius_m: float) -> float:
    """Distance of a device uniform in the annulus [MIN_DISTANCE_M, cell_radius_m]."""
    u = stream_rng("fleet.position", seed, partition_id).random()
    return math.sqrt(MIN_DISTANCE_M**2 + u * (cell_radius_m**2 - MIN_DISTANCE_M**2))


def cpu_costs(workload: Workload, cycles_per_flop: float) -> dict[str, float]:
    """Cycles C per training sample (Eq. (9)) and M^C per model update (Eq. (12))."""
    return {
        "cycles_per_sample": workload.training_flops_per_sample * cycles_per_flop,
        "update_cycles": workload.update_flops * cycles_per_flop,
    }


def derive_device(
    partition_id: int, num_partitions: int, config: FleetConfig, workload: Workload
) -> Device:
    """Draw device ``partition_id`` of a simulated fleet, deterministically from the seed.

    CPU: the clock is 0.7, 1.4 or 2.1 GHz by third of the partition ids (Sec. VI-B).
    GPU: f^G = ``gpu_flops`` x 1, 2 or 3 by third; c_k = FLOPs per sample / f^G,
    t^l = (``gpu_overhead_s`` / speed-up) + B^th c_k, update = update FLOPs / f^G (Eq. (28)).
    """
    if not 0 <= partition_id < num_partitions:
        raise FleetError("partition-id", f"must be in [0, {num_partitions}), got {partition_id}")
    group = tier(partition_id, num_partitions)
    if config.scenario == "cpu":
        compute: CpuProfile | GpuProfile = CpuProfile(
            cpu_hz=CPU_HZ_TIERS[group], **cpu_costs(workload, config.cycles_per_flop)
        )
    else:
        speedup = CPU_HZ_TIERS[group] / CPU_HZ_TIERS[0]
        flops = config.gpu_flops * speedup
        slope = workload.training_flops_per_sample / flops
        compute = GpuProfile(
            latency_floor_s=config.gpu_overhead_s / speedup + config.gpu_batch_threshold * slope,
            latency_slope_s=slope,
            batch_threshold=config.gpu_batch_threshold,
            update_s=workload.update_flops / flops,
        )
    distance = distance_m(partition_id, config.seed, config.cell_radius_m)
    return Device(partition_id, float(path_gain(distance)), distance, compute)


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FleetError(field, f"must be a finite number, got {value!r}")
    return float(value)


def _number(value: Any, field: str, *, positive: bool) -> float:
    number = _finite(value, field)
    if positive and number <= 0:
        raise FleetError(field, f"must be > 0, got {value!r}")
    if number < 0:
        raise FleetError(field, f"must be >= 0, got {value!r}")
    return number


def device_from_fields(
    partition_id: int, fields: Mapping[str, Any], scenario: str, name: Callable[[str], str]
) -> Device:
    """Validate fleet-file style ``fields`` into a device.

    Parameters
    ----------
    partition_id
        The device's partition.
    fields
        Exactly one of ``distance_m`` (> 0) or ``path_gain_db``, and the compute fields of
        ``scenario``; fields of the other scenario may be present and are ignored.
    scenario
        ``"cpu"`` or ``"gpu"``.
    name
        Maps a field name to the name errors report (``devices[2].cpu_hz``).

    Raises
    ------
    FleetError
        Unknown, missing or out-of-range fields, named by ``name``.
    """
    for key in fields:
        if key not in KNOWN_FIELDS:
            raise FleetError(name(key), f"unknown key; known: {', '.join(KNOWN_FIELDS)}")
    position = [key for key in POSITION_FIELDS if key in fields]
    if len(position) != 1:
        raise FleetError(name(POSITION_FIELDS[0]), "give exactly one of distance_m, path_gain_db")
    if position == ["distance_m"]:
        distance: float | None = _number(fields["distance_m"], name("distance_m"), positive=True)
        gain = float(path_gain(distance))
    else:
        distance = None
        gain_db = _finite(fields["path_gain_db"], name("path_gain_db"))
        if gain_db > 0:  # a passive channel does not amplify (and 10**(dB/10) overflows)
            raise FleetError(name("path_gain_db"), f"must be <= 0 dB, got {gain_db!r}")
        gain = 10.0 ** (gain_db / 10.0)
    values = {}
    for key in compute_fields(scenario):
        if key not in fields:
            raise FleetError(name(key), f"missing (needed for scenario {scenario!r})")
        values[key] = _number(fields[key], name(key), positive=key in _POSITIVE)
    return Device(partition_id, gain, distance, PROFILES[scenario](**values))


def with_overrides(device: Device, overrides: Mapping[str, Any]) -> Device:
    """Replace fields of ``device`` by kebab-case ``overrides`` (a SuperNode's node config).

    Keys other than device fields (``partition-id``, ``data-dir``, ...) are ignored; a
    position override (``distance-m`` or ``path-gain-db``) replaces the device's position.
    Errors name the key as ``node-config.<key>``.
    """
    fields = {
        key.replace("-", "_"): value
        for key, value in overrides.items()
        if key.replace("-", "_") in KNOWN_FIELDS
    }
    if not fields:
        return device
    base = device.fields()
    if fields.keys() & set(POSITION_FIELDS):
        base = {key: value for key, value in base.items() if key not in POSITION_FIELDS}
    return device_from_fields(
        device.partition_id,
        {**base, **fields},
        device.scenario,
        lambda key: f"node-config.{key.replace('_', '-')}",
    )


def fading_powers(seed: int, partition_id: int, server_round: int) -> tuple[float, float]:
    """Draw this round's Rayleigh fading powers |h^U|^2, |h^D|^2 ~ Exp(1) (Eqs. (5)-(6))."""
    up, down = stream_rng("fleet.fading", seed, partition_id, server_round).exponential(size=2)
    return float(up), float(down)


def fading_fields(seed: int, partition_id: int, server_round: int) -> dict[str, float]:
    """Return the ``fading-up`` and ``fading-down`` of a profile reply in ``server_round``."""
    up, down = fading_powers(seed, partition_id, server_round)
    return {"fading-up": up, "fading-down": down}


def profile_record(
    device: Device, server_round: int, num_examples: int, seed: int, num_partitions: int
) -> dict[str, int | float | str]:
    """Return the ``profile`` ConfigRecord content a client replies to ``query.profile``.

    ``num_partitions`` is the K that the device's partition id is one of.
    """
    compute = {
        key.replace("_", "-"): value for key, value in dataclasses.asdict(device.compute).items()
    }
    return {
        "partition-id": device.partition_id,
        "num-partitions": num_partitions,
        "num-examples": num_examples,
        "scenario": device.scenario,
        "path-gain": device.path_gain,
        **fading_fields(seed, device.partition_id, server_round),
        **compute,
    }
