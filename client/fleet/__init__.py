"""The device fleet of Sec. VI-A: positions, CPU or GPU profiles, per-round fading.

Pure numpy: no torch, so a Flower client can answer profile queries cheaply.
"""

from client.fleet.devices import (
    CPU_HZ_TIERS,
    MIN_DISTANCE_M,
    CpuProfile,
    Device,
    FleetConfig,
    FleetError,
    GpuProfile,
    Workload,
    derive_device,
    device_from_fields,
    fading_fields,
    fading_powers,
    profile_record,
    with_overrides,
)
from client.fleet.sources import device_for, load_fleet_file

__all__ = [
    "CPU_HZ_TIERS",
    "MIN_DISTANCE_M",
    "CpuProfile",
    "Device",
    "FleetConfig",
    "FleetError",
    "GpuProfile",
    "Workload",
    "derive_device",
    "device_for",
    "device_from_fields",
    "fading_fields",
    "fading_powers",
    "load_fleet_file",
    "profile_record",
    "with_overrides",
]
