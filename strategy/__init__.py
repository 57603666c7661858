"""The FEEL Flower strategy: per-round scheduling, batch-weighted gradients, server SGD."""

from strategy.feel import FeelStrategy
from strategy.instance import InstanceSettings, build_instance
from strategy.record import LatencySplit, RoundRecord
from strategy.schemes import SCHEME_POLICIES, policy_for_scheme

__all__ = [
    "SCHEME_POLICIES",
    "FeelStrategy",
    "InstanceSettings",
    "LatencySplit",
    "RoundRecord",
    "build_instance",
    "policy_for_scheme",
]
