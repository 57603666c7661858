"""What a device computes: its settings, profile (Sec. VI-A) and local gradient (Sec. II-A).

torch-backed modules are imported inside the functions that use them; everything here is
cached per process, since a simulation actor serves many devices.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from client.fleet import CPU_HZ_TIERS, Device, FleetConfig, device_for, profile_record
from client.fleet.devices import KNOWN_FIELDS
from client.shard import Shard, local_shard
from task.codec import EncodedTensor, encode_arrays
from task.config import DEFAULTS, resolve_run_config
from task.data import dataset_shape
from task.errors import ConfigError
from task.quantize import FULL_PRECISION_BITS
from task.seeding import stream_rng
from task.system_model import charged_workload

# The node-config keys every device has (set by the simulation engine, or ``--node-config``).
NODE_KEYS = ("partition-id", "num-partitions")
# Device fields a node config may set, in kebab case (``cpu-hz``, ``distance-m``, ...).
DEVICE_KEYS = tuple(field.replace("_", "-") for field in KNOWN_FIELDS)
# Node-config switch (bool): measure the compute profile on the device (:func:`measure_compute`).
PROFILE_ON_START = "profile-on-start"
# Timed and untimed training steps per batch size when measuring.
MEASURE_REPEATS, MEASURE_WARMUP = 3, 1


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
        """Read the node config and the run config of a Flower ``Context``.

        Raises
        ------
        ConfigError
            Naming the node-config key (``node-config.<key>``) that is missing, unknown
            (neither a partition key, a run-config key nor a device field) or bad, or
            ``profile-on-start`` with a ``system-model`` (it would time the wrong model).
        """
        for key in node_config:
            if key not in (*NODE_KEYS, PROFILE_ON_START, *DEVICE_KEYS) and key not in DEFAULTS:
                known = ", ".join((*NODE_KEYS, PROFILE_ON_START, *DEVICE_KEYS))
                raise ConfigError(
                    f"node-config.{key}", f"unknown key; known: {known} and the run-config keys"
                )
        if not isinstance(node_config.get(PROFILE_ON_START, False), bool):
            raise ConfigError(
                f"node-config.{PROFILE_ON_START}",
                f"expected true or false, got {node_config[PROFILE_ON_START]!r}",
            )
        pid, count = (_node_int(node_config, key) for key in NODE_KEYS)
        if not 0 <= pid < count:
            raise ConfigError("node-config.partition-id", f"must be in [0, {count}), got {pid}")
        local = {key: value for key, value in node_config.items() if key in DEFAULTS}
        try:
            config = resolve_run_config({**run_config, **local})
        except ConfigError as exc:
            if exc.field in local:
                raise ConfigError(f"node-config.{exc.field}", exc.message) from None
            raise
        if node_config.get(PROFILE_ON_START) and config["system-model"]:
            raise ConfigError(
                f"node-config.{PROFILE_ON_START}",
                f"times the trained {config['model']}, not system-model "
                f"{config['system-model']!r}: set one of them",
            )
        return cls(pid, count, config, dict(node_config))

    @property
    def measures_compute(self) -> bool:
        """Whether the node config asks to measure the compute profile here."""
        return bool(self.overrides.get(PROFILE_ON_START, False))

    def with_compute(self, fields: Mapping[str, float]) -> Node:
        """Return the node with measured compute ``fields``; node-config fields still win."""
        return dataclasses.replace(self, overrides={**fields, **self.overrides})


def _node_int(node_config: Mapping[str, Any], key: str) -> int:
    """Return the integer ``key`` of the node config."""
    if key not in node_config:
        raise ConfigError(f"node-config.{key}", "missing")
    value = node_config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"node-config.{key}", f"expected an integer, got {value!r}")
    return value


def shard(node: Node) -> Shard:
    """Return the device's training examples (:func:`client.shard.local_shard`)."""
    return local_shard(node.config, node.partition_id, node.num_partitions)


def _input_shape(config: Mapping[str, Any]) -> tuple[int, int, int]:
    """Return the (channels, height, width) of one example of the run's dataset."""
    shape = dataset_shape(config["dataset"])
    return shape.in_channels, shape.image_size, shape.image_size


def new_model(config: Mapping[str, Any]) -> Any:
    """Build a freshly initialised model of the run config for its dataset (not loaded)."""
    from task.models import build_model

    shape = dataset_shape(config["dataset"])
    return build_model(config["model"], shape.num_classes, shape.in_channels, shape.image_size)


@functools.lru_cache(maxsize=2)
def _process_model(model: str, dataset: str) -> Any:
    return new_model({"model": model, "dataset": dataset})


def global_model(
    config: Mapping[str, Any], state: Mapping[str, Any], *, read_only_parameters: bool = False
) -> Any:
    """Return this process's model of the run config, holding ``state``.

    One model per process (a simulation actor serves many devices, a SuperNode many
    rounds), given each message's ``state``: for resnet18 building one takes a fifth of a
    batch-16 gradient step. The model takes copies of the tensors, or, with
    ``read_only_parameters`` (a gradient step, which only reads its parameters), the
    parameter tensors themselves: for resnet18 that saves copying 45 MB per device. The
    buffers (BatchNorm statistics, updated in training) are always copied, so the model
    never writes into ``state``.
    """
    model = _process_model(config["model"], config["dataset"])
    shared = {name for name, _ in model.named_parameters()} if read_only_parameters else set()
    model.load_state_dict(
        {name: value if name in shared else value.clone() for name, value in state.items()},
        assign=True,
    )
    return model


def device(node: Node) -> Device:
    """Return the device: fleet file or seeded draw, then node-config overrides."""
    config = node.config
    fleet_config = FleetConfig(
        seed=config["seed"],
        scenario=config["scenario"],
        cell_radius_m=config["cell-radius-m"],
        cycles_per_flop=config["cycles-per-flop"],
    )
    workload = charged_workload(config)
    return device_for(
        node.partition_id,
        node.num_partitions,
        fleet_config,
        workload,
        config["fleet-file"],
        node.overrides,
    )


def measure_compute(node: Node) -> dict[str, float]:
    """Time the model's training step here and fit the run's compute model (``feel profile``).

    CPU scenario: Eq. (9) at the device's clock (its ``cpu-hz``, given or derived), so that
    C B / f is the measured time; GPU scenario: Eq. (27) and the update time of Eq. (28).
    Returns the compute fields in kebab case (``cycles-per-sample``, ...).
    """
    from client.profiler.report import build_report
    from client.profiler.timing import default_batches, device_name, time_model
    from task.training import resolve_device

    config = node.config
    shape = _input_shape(config)
    hardware = resolve_device(config["device"])
    timings = time_model(
        new_model(config),
        shape,
        dataset_shape(config["dataset"]).num_classes,
        default_batches(config["max-batch"]),
        hardware,
        MEASURE_REPEATS,
        MEASURE_WARMUP,
    )
    workload = charged_workload(config)
    compute = device(node).compute
    report = build_report(
        model_name=config["model"],
        input_shape=shape,
        device=hardware.type,
        device_name=device_name(hardware),
        timings=timings,
        cpu_hz=getattr(compute, "cpu_hz", CPU_HZ_TIERS[-1]),  # GPU fields do not use it
        training_flops_per_sample=workload.training_flops_per_sample,
        update_flops=workload.update_flops,
    )
    fields = report[f"{config['scenario']}_profile"]
    return {key.replace("_", "-"): float(value) for key, value in fields.items()}


def profile(node: Node, server_round: int) -> dict[str, int | float | str]:
    """Return the reply to ``query.profile`` for ``server_round`` (message contract)."""
    examples, seed = len(shard(node)), node.config["seed"]
    return profile_record(device(node), server_round, examples, seed, node.num_partitions)


def reproducible_torch(node: Node, server_round: int) -> None:
    """Make this device's torch work in ``server_round`` depend on (seed, partition, round) only.

    One intra-op thread: the serial CPU of Eq. (9), and sums that do not change with the
    cores Ray gives an actor (with 2 threads the CNN's gradient differs in the last bits).
    On a GPU, deterministic algorithms where torch has them (a warning names any that lacks
    one, e.g. some CUDA backward passes); the CPU kernels the models use are deterministic
    already, and asking torch for it imports its compiler (about a second of every fresh
    deployment process). The global generator (dropout) is seeded per device and round,
    whichever actor serves the device.
    """
    import torch

    from task.training import resolve_device

    torch.set_num_threads(1)
    rng = stream_rng("client.torch", node.config["seed"], node.partition_id, server_round)
    seed = int(rng.integers(2**63))
    if resolve_device(node.config["device"]).type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(seed)
    else:  # torch.manual_seed would also queue a CUDA seeding, with a stack trace: 0.7 ms
        torch.default_generator.manual_seed(seed)


@dataclass(frozen=True)
class LocalGradient:
    """A device's reply to one ``train`` message.

    Attributes
    ----------
    grads
        Gradient per parameter name (float32; :func:`sent_gradient` encodes it).
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
    cursor: int,
) -> LocalGradient:
    """Compute g_k on the next local batch (Step 1 of Sec. II-A).

    Parameters
    ----------
    node
        The device.
    state
        The global model's ``state_dict`` (parameters and BN buffers) as torch tensors.
    batch_size
        The assigned B_k.
    cursor
        Examples this device consumed in earlier rounds.
    """
    from task.sampling import next_batch
    from task.training import compute_gradient, resolve_device

    config, pid, examples = node.config, node.partition_id, shard(node)
    batch, cursor = next_batch(len(examples), batch_size, config["seed"], pid, cursor)
    grads, loss, buffers = compute_gradient(
        global_model(config, state, read_only_parameters=True),
        *examples.examples(batch),
        resolve_device(config["device"]),
        config["gradient-chunk"],
    )
    return LocalGradient(grads, buffers, loss, len(batch), cursor)


def sent_gradient(
    node: Node, grads: Mapping[str, np.ndarray], bits: int, server_round: int
) -> Mapping[str, np.ndarray] | dict[str, EncodedTensor]:
    """Return g_k as the device uploads it (Step 2 of Sec. II-A, Eq. 10).

    Plain float32 at ``bits = 32``; below, each tensor encoded to ``bits`` bits per element
    (:func:`task.codec.encode_arrays`), the rounding drawn from a stream keyed by the seed,
    the partition and ``server_round``, so that a resumed run sends the same payload.
    """
    if bits >= FULL_PRECISION_BITS:
        return grads
    return _encoded(node, "client.quantize", grads, bits, server_round)


def sent_model(
    node: Node,
    parameters: Mapping[str, np.ndarray],
    buffers: Mapping[str, np.ndarray],
    received: Mapping[str, np.ndarray],
    bits: int,
    server_round: int,
) -> tuple[Mapping[str, np.ndarray] | dict[str, EncodedTensor], dict[str, np.ndarray]]:
    """Return the local model's upload (model-bits): its change from the ``received`` model.

    The parameters' change w_k - w, plain float32 at ``bits = 32`` and below encoded like
    a gradient (:func:`sent_gradient`) from a stream of its own, its size the s of Eq. (10)
    at model-bits; and the buffers' change, plain (integer counters exactly). The server
    adds the model it sent.
    """
    buffer_change = {name: value - received[name] for name, value in buffers.items()}
    change = {name: value - received[name] for name, value in parameters.items()}
    if bits >= FULL_PRECISION_BITS:
        return change, buffer_change
    return _encoded(node, "client.quantize.model", change, bits, server_round), buffer_change


def _encoded(
    node: Node, purpose: str, arrays: Mapping[str, np.ndarray], bits: int, server_round: int
) -> dict[str, EncodedTensor]:
    """Encode ``arrays`` from the ``purpose`` stream of (seed, partition, ``server_round``)."""
    rng = stream_rng(purpose, node.config["seed"], node.partition_id, server_round)
    return encode_arrays(arrays, bits, rng)
