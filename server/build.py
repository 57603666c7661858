"""Build the strategy's parts from the run config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scheduler.channel import ChannelParams
from strategy import FeelStrategy, InstanceSettings, build_scheme_strategy
from strategy.deadlines import Deadlines
from strategy.identity import PartitionPins, PartitionSizes, read_node_partitions
from strategy.instance import ProfileBounds
from strategy.schemes import MODEL_SCHEMES
from task.codec import encoded_bits
from task.system_model import charged_workload


def channel_params(config: Mapping[str, Any]) -> ChannelParams:
    """Return the Table I channel parameters of the run config."""
    return ChannelParams(
        bandwidth_hz=config["bandwidth-hz"],
        noise_dbm_per_hz=config["noise-dbm-per-hz"],
        tx_power_dbm=config["tx-power-dbm"],
        cell_radius_m=config["cell-radius-m"],
    )


def profile_bounds(config: Mapping[str, Any]) -> ProfileBounds:
    """Return the run config's plausibility bounds on the devices' profile reports."""
    return ProfileBounds(
        max_cpu_hz=config["max-cpu-hz"],
        min_distance_m=config["min-distance-m"],
        max_distance_m=config["max-distance-m"],
        max_fading=config["max-fading"],
        min_gpu_floor_s=config["min-gpu-floor-s"],
        max_flops_per_cycle=config["max-flops-per-cycle"],
        max_gpu_flops=config["max-gpu-flops"],
        min_flops=config["min-flops"],
    )


def upload_bits(config: Mapping[str, Any]) -> int:
    """Return the bits per element of the scheme's exchanges: model-bits or gradient-bits."""
    return config["model-bits" if config["scheme"] in MODEL_SCHEMES else "gradient-bits"]


def instance_settings(
    config: Mapping[str, Any], shapes: Iterable[tuple[int, ...]]
) -> InstanceSettings:
    """Return the instance settings for a model whose parameters have ``shapes``.

    The size s of an upload and a download (Eqs. 10-11) is the encoded size of a gradient,
    or of a model for the model-based schemes, at the run config's bits
    (:func:`task.codec.encoded_bits`): ``b p`` at 32 bits, the packed levels plus the
    per-tensor floats below (Sec. III-B). The compute bounds scale with the charged
    network's FLOPs (:func:`task.system_model.charged_workload`).
    """
    return InstanceSettings(
        scenario=config["scenario"],
        gradient_size_bits=float(encoded_bits(shapes, upload_bits(config))),
        frame_s=config["frame-s"],
        min_batch=config["min-batch"],
        max_batch=config["max-batch"],
        channel=channel_params(config),
        fading=config["fading"],
        bounds=profile_bounds(config),
        workload=charged_workload(config),
        effective_capacitance=config["effective-capacitance"],
        gpu_power_w=config["gpu-power-w"],
        idle_power_w=config["idle-power-w"],
    )


def deadlines(config: Mapping[str, Any], simulated: bool) -> Deadlines:
    """Return the run config's deadlines; on a ``simulated`` grid, without the quorum."""
    chosen = Deadlines(
        connect_s=config["connect-timeout-s"],
        round_s=config["round-timeout-s"],
        quorum=config["round-quorum"],
        grace_s=config["round-grace-s"],
        max_silent_rounds=config["max-silent-rounds"],
    )
    return chosen.without_quorum() if simulated else chosen


def partition_pins(config: Mapping[str, Any], sizes: PartitionSizes | None) -> PartitionPins:
    """Return the partition pins of the run config's ``node-partitions`` file (or none).

    Raises
    ------
    task.errors.ConfigError
        Field ``node-partitions``, for a file that cannot be read or is not a valid map.
    """
    path = config["node-partitions"]
    return PartitionPins(read_node_partitions(path) if path else {}, sizes)


def build_strategy(
    config: Mapping[str, Any],
    shapes: Iterable[tuple[int, ...]],
    *,
    simulated: bool = False,
    sizes: PartitionSizes | None = None,
) -> FeelStrategy:
    """Build the strategy of the run config's scheme for a model with parameter ``shapes``.

    ``simulated``: the grid is a simulation's (no quorum). ``sizes``: the run's partition
    sizes, to check the devices' ``num-examples`` against (:mod:`strategy.identity`).
    """
    return build_scheme_strategy(
        config,
        instance_settings(config, shapes),
        deadlines(config, simulated),
        partition_pins(config, sizes),
    )
