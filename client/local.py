"""What a device computes: its settings, profile (Sec. VI-A) and local gradient (Sec. II-A).

torch-backed modules are imported inside the functions that use them; everything here is
cached per process, since a simulation actor serves many devices.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleet import Device, FleetConfig, Workload, device_for, profile_record
from server.config import DEFAULTS, resolve_run_config
from task.errors import ConfigError
from task.seeding import stream_rng


@dataclass(frozen=True)
class Node:
    """One device's view of the run.

    Attributes
    ----------
    partition_id, num_partitions
        From the node config (set by the simulation engine, or ``--node-config``).
    config
        The resolved run config, with node-config values overriding run-config keys
        (e.g. a SuperNode's own ``data-dir`` or ``device``).
    overrides
        The node config itself: device fields in it (``cpu-hz``, ``distance-m``, ...)
        override the derived or fleet-file device.
    """

    partition_id: int
    num_partitions: int
    config: dict[str, Any]
    overrides: dict[str, Any]

    @classmethod
    def from_context(cls, node_config: Mapping[str, Any], run_config: Mapping[str, Any]) -> Node:
        """Read the node config and the run config of a Flower ``Context``."""
        try:
            pid, count = int(node_config["partition-id"]), int(node_config["num-partitions"])
        except KeyError as exc:
            raise ConfigError(f"node-config.{exc.args[0]}", "missing") from None
        if not 0 <= pid < count:
            raise ConfigError("node-config.partition-id", f"must be in [0, {count}), got {pid}")
        local = {key: value for key, value in node_config.items() if key in DEFAULTS}
        config = resolve_run_config({**run_config, **local})
        return cls(pid, count, config, dict(node_config))


def _dataset(config: Mapping[str, Any]) -> Any:
    from task.data import load_dataset

    return load_dataset(config["dataset"], config["data-dir"] or None)


def local_indices(node: Node) -> np.ndarray:
    """Return the indices of the device's examples in the training set."""
    from task.partition import partition_indices

    parts = partition_indices(
        _dataset(node.config).y_train,
        node.num_partitions,
        node.config["partition"],
        node.config["seed"],
        node.config["dirichlet-alpha"],
    )
    return parts[node.partition_id]


def new_model(config: Mapping[str, Any]) -> Any:
    """Build a freshly initialised model of the run config for its dataset."""
    from task.models import build_model

    data = _dataset(config)
    return build_model(config["model"], data.num_classes, data.in_channels, data.image_size)


@functools.lru_cache(maxsize=4)
def _workload(model: str, dataset: str, data_dir: str) -> Workload:
    from task.flops import training_flops_per_sample, update_flops

    config = {"model": model, "dataset": dataset, "data-dir": data_dir}
    network, data = new_model(config), _dataset(config)
    shape = (data.in_channels, data.image_size, data.image_size)
    return Workload(training_flops_per_sample(network, shape), update_flops(network))


def device(node: Node) -> Device:
    """Return the device: fleet file or seeded draw, then node-config overrides."""
    config = node.config
    fleet_config = FleetConfig(
        seed=config["seed"],
        scenario=config["scenario"],
        cell_radius_m=config["cell-radius-m"],
        cycles_per_flop=config["cycles-per-flop"],
    )
    workload = _workload(config["model"], config["dataset"], config["data-dir"])
    return device_for(
        node.partition_id,
        node.num_partitions,
        fleet_config,
        workload,
        config["fleet-file"],
        node.overrides,
    )


def profile(node: Node, server_round: int) -> dict[str, int | float | str]:
    """Return the reply to ``query.profile`` for ``server_round`` (message contract)."""
    return profile_record(device(node), server_round, len(local_indices(node)), node.config["seed"])


@dataclass(frozen=True)
class LocalGradient:
    """A device's reply to one ``train`` message.

    Attributes
    ----------
    grads
        Gradient per parameter name, quantized to ``bits`` bits when ``bits < 32``.
    buffers
        Batch-normalisation buffers after the step, keyed like the ``state_dict``.
    loss
        Mean training loss of the batch.
    batch_size
        Examples used: the assigned B_k, capped at the partition size.
    cursor
        Examples consumed so far, the sampling state to keep.
    """

    grads: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]
    loss: float
    batch_size: int
    cursor: int


def local_gradient(
    node: Node,
    state: Mapping[str, Any],
    batch_size: int,
    bits: int,
    server_round: int,
    cursor: int,
) -> LocalGradient:
    """Compute and quantize g_k on the next local batch (Steps 1-2 of Sec. II-A).

    Parameters
    ----------
    node
        The device.
    state
        The global model's ``state_dict`` (parameters and BN buffers) as torch tensors.
    batch_size
        The assigned B_k.
    bits
        Quantization bits b per gradient element; 32 sends float32 unchanged.
    server_round
        The round, which with the seed and partition keys the quantization noise.
    cursor
        Examples this device consumed in earlier rounds.
    """
    from task.quantize import stochastic_quantize
    from task.sampling import next_batch
    from task.training import compute_gradient, resolve_device

    config, pid = node.config, node.partition_id
    data, indices = _dataset(config), local_indices(node)
    batch, cursor = next_batch(len(indices), batch_size, config["seed"], pid, cursor)
    examples = indices[batch]
    model = new_model(config)
    model.load_state_dict(state)
    grads, loss, buffers = compute_gradient(
        model, data.x_train[examples], data.y_train[examples], resolve_device(config["device"])
    )
    rng = stream_rng("client.quantize", config["seed"], pid, server_round)
    grads = {name: stochastic_quantize(grad, bits, rng) for name, grad in grads.items()}
    return LocalGradient(grads, buffers, loss, len(batch), cursor)
