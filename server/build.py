"""Build the strategy's parts from the run config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.channel import ChannelParams
from strategy import FeelStrategy, InstanceSettings, build_scheme_strategy


def channel_params(config: Mapping[str, Any]) -> ChannelParams:
    """Return the Table I channel parameters of the run config."""
    return ChannelParams(
        bandwidth_hz=config["bandwidth-hz"],
        noise_dbm_per_hz=config["noise-dbm-per-hz"],
        tx_power_dbm=config["tx-power-dbm"],
        cell_radius_m=config["cell-radius-m"],
    )


def instance_settings(config: Mapping[str, Any], num_params: int) -> InstanceSettings:
    """Return the instance settings, with gradient size s = b * p (Sec. III-B)."""
    return InstanceSettings(
        scenario=config["scenario"],
        gradient_size_bits=float(config["gradient-bits"] * num_params),
        frame_s=config["frame-s"],
        min_batch=config["min-batch"],
        max_batch=config["max-batch"],
        channel=channel_params(config),
        fading=config["fading"],
    )


def build_strategy(config: Mapping[str, Any], num_params: int) -> FeelStrategy:
    """Build the strategy of the run config's scheme for a model of ``num_params`` parameters."""
    return build_scheme_strategy(config, instance_settings(config, num_params))
