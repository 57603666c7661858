"""Where a device comes from: a fleet file (TOML or JSON) or the seeded draw, then node config."""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from client.fleet.devices import (
    Device,
    FleetConfig,
    FleetError,
    Workload,
    cpu_costs,
    derive_device,
    device_from_fields,
    with_overrides,
)

# Example (TOML); device i serves partition i; JSON holds the same {"devices": [...]}.
#   [[devices]]
#   distance_m = 120.0          # or path_gain_db = -95.0
#   cpu_hz = 1.4e9              # cpu scenario; cycles_per_sample, update_cycles optional
#   latency_floor_s = 0.004     # gpu scenario: latency_floor_s, latency_slope_s,
#   latency_slope_s = 1e-4      #   batch_threshold, update_s all required
#   batch_threshold = 16
#   update_s = 1e-5


def _read(path: Path) -> object:
    if path.suffix not in (".toml", ".json"):
        raise FleetError("fleet-file", f"expected a .toml or .json file, got {path}")
    try:
        text = path.read_text()
    except OSError as exc:
        raise FleetError("fleet-file", f"cannot read {path}: {exc.strerror}") from exc
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise FleetError(
            "fleet-file", f"{path} is not valid {path.suffix[1:].upper()}: {exc}"
        ) from exc
    except RecursionError:  # nesting deeper than the parser's stack
        raise FleetError("fleet-file", f"{path} is nested too deeply") from None


@functools.lru_cache(maxsize=4)
def load_fleet_file(
    path: str, scenario: str, workload: Workload, cycles_per_flop: float
) -> tuple[Device, ...]:
    """Read and validate a fleet file; cached per process.

    Parameters
    ----------
    path
        A ``.toml`` or ``.json`` file with a ``devices`` list; entry i is the device of
        partition i (see :func:`client.fleet.devices.device_from_fields` for the fields).
    scenario
        ``"cpu"`` or ``"gpu"``: which compute fields are required.
    workload, cycles_per_flop
        Defaults for a CPU device's ``cycles_per_sample`` and ``update_cycles``.

    Raises
    ------
    FleetError
        Naming the key and device index, e.g. ``devices[2].cpu_hz: must be > 0, got -1``.
    """
    data = _read(Path(path).expanduser())
    if not isinstance(data, dict) or set(data) != {"devices"}:
        raise FleetError("fleet-file", f"{path} must hold exactly one key, 'devices'")
    devices = data["devices"]
    if not isinstance(devices, list) or not devices:
        raise FleetError("devices", "must be a non-empty list of devices")
    defaults = cpu_costs(workload, cycles_per_flop)
    fleet = []
    for index, entry in enumerate(devices):
        if not isinstance(entry, dict):
            raise FleetError(f"devices[{index}]", f"must be a table of fields, got {entry!r}")
        fleet.append(
            device_from_fields(
                index, {**defaults, **entry}, scenario, lambda key, i=index: f"devices[{i}].{key}"
            )
        )
    return tuple(fleet)


def check_fleet_file(path: str, scenario: str, num_devices: int) -> None:
    """Check a fleet file before a run: valid, and a device for each of ``num_devices``.

    CPU costs a device leaves out default to the model's (:func:`load_fleet_file`); any
    positive workload validates the same, so a unit one stands in for the model's.

    Raises
    ------
    FleetError
        As :func:`load_fleet_file`, or naming ``devices`` if there are too few.
    """
    fleet = load_fleet_file(path, scenario, Workload(1.0, 1.0), 1.0)
    if len(fleet) < num_devices:
        raise FleetError(
            "devices", f"{path} lists {len(fleet)} devices, fewer than the {num_devices} of the run"
        )


def device_for(
    partition_id: int,
    num_partitions: int,
    config: FleetConfig,
    workload: Workload,
    fleet_file: str = "",
    overrides: Mapping[str, Any] | None = None,
) -> Device:
    """Return the device of ``partition_id``, with ``overrides`` (a node config) applied.

    It comes from ``fleet_file`` if one is given, else from
    :func:`client.fleet.devices.derive_device`.
    """
    if fleet_file:
        fleet = load_fleet_file(fleet_file, config.scenario, workload, config.cycles_per_flop)
        if partition_id >= len(fleet):
            raise FleetError(
                "devices",
                f"{fleet_file} lists {len(fleet)} devices, none for partition {partition_id}",
            )
        device = fleet[partition_id]
    else:
        device = derive_device(partition_id, num_partitions, config, workload)
    return with_overrides(device, overrides or {})
