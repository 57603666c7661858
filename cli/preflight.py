"""Checks of a simulation's inputs before it starts, so that a bad one fails in seconds.

:func:`task.config.resolve_run_config` checks each run-config value on its own; these
checks need the files and the number of devices: the dataset is where ``data-dir`` says,
its training set splits into a partition of at least ``min-batch`` examples per device,
``min-devices`` does not exceed the devices, the fleet file describes every device, and the
``node-partitions`` file is a valid map.
Inside the run the same problems would surface only after the SuperLink and Ray started
(for CIFAR-10 without ``data-dir``, after about 30 s).

:func:`preflight` runs them, and estimates the run's memory (:mod:`cli.memory`), in a
child process: they import torch and Hugging Face ``datasets`` and load the dataset, half a
gigabyte that the ``feel`` process, which follows the run to its end, would otherwise hold.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cli.memory import MemoryEstimate
from task.errors import ConfigError


def preflight(
    config: Mapping[str, Any], num_devices: int, actors: int, shards: Path | None = None
) -> MemoryEstimate:
    """Check the inputs (:func:`check_simulation`) and estimate the memory, in a child process.

    ``actors`` Ray actors serve the ``num_devices`` devices. With ``shards``, every device's
    examples are written there too (:func:`client.shard.write_shards`). A process that has
    imported torch already (a notebook, a test session) runs them itself: a child would add
    only its start-up, about 2 s.

    Raises
    ------
    ConfigError
        As :func:`check_simulation`.
    """
    arguments = (dict(config), num_devices, actors, shards)
    if "torch" in sys.modules:
        return _checked_estimate(*arguments)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_checked_estimate, *arguments).result()


def _checked_estimate(
    config: dict[str, Any], num_devices: int, actors: int, shards: Path | None
) -> MemoryEstimate:
    from cli.memory import dataset_bytes, estimate, model_footprint
    from client.shard import write_shards
    from server.build import upload_bits

    check_simulation(config, num_devices)
    if shards is not None:
        write_shards(config, num_devices, shards)
    footprint = model_footprint(config["model"], config["dataset"])
    data = dataset_bytes(config["dataset"], config["data-dir"] or None)
    return estimate(config, num_devices, actors, footprint, data, upload_bits(config))


def check_simulation(config: Mapping[str, Any], num_devices: int) -> None:
    """Check the inputs of a simulation of ``num_devices`` devices with run config ``config``.

    Raises
    ------
    ConfigError
        Naming the run-config key (``num-partitions`` for the number of devices; a fleet
        file's ``devices[i].<field>``) and the bad value.
    """
    from client.fleet.sources import check_fleet_file
    from server.tensorboard import log_directory
    from strategy.identity import read_node_partitions
    from task.data import train_labels
    from task.model_file import load_model
    from task.partition import device_indices

    if config["min-devices"] > num_devices:
        raise ConfigError(
            "min-devices", f"{config['min-devices']} exceeds the {num_devices} devices of the run"
        )
    if config["attacker"] >= num_devices:
        raise ConfigError(
            "attacker", f"{config['attacker']} is no partition id of the {num_devices} devices"
        )
    nearest, farthest = config["min-distance-m"], config["max-distance-m"]
    if farthest <= nearest:
        raise ConfigError("max-distance-m", f"{farthest:g} is not above min-distance-m {nearest:g}")
    if config["data-dir"] and not Path(config["data-dir"]).is_dir():
        raise ConfigError("data-dir", f"no such directory {config['data-dir']!r}")
    if config["tensorboard"]:
        log_directory(config["tensorboard"])
    labels = train_labels(config["dataset"], config["data-dir"] or None)
    parts = device_indices(labels, num_devices, config)
    smallest = min(range(num_devices), key=lambda pid: len(parts[pid]))
    if len(parts[smallest]) < config["min-batch"]:
        raise ConfigError(
            "min-batch",
            f"{config['min-batch']} exceeds the {len(parts[smallest])} examples of device "
            f"{smallest} ({config['partition']} partition over {num_devices} devices)",
        )
    if config["fleet-file"]:
        check_fleet_file(config["fleet-file"], config["scenario"], num_devices)
    if config["initial-model"]:
        load_model(config["initial-model"], config)
    if config["node-partitions"]:
        read_node_partitions(config["node-partitions"])
