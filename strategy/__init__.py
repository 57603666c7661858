"""The FEEL Flower strategy: per-round scheduling, batch-weighted gradients, server SGD."""

from strategy.feel import FeelStrategy, TrainingComplete
from strategy.individual import IndividualStrategy
from strategy.instance import InstanceSettings, build_instance
from strategy.model_feel import ModelFeelStrategy
from strategy.record import LatencySplit, RoundRecord
from strategy.schemes import (
    SCHEME_NAMES,
    SCHEME_POLICIES,
    build_scheme_strategy,
    check_scheme,
    policy_for_scheme,
)

__all__ = [
    "SCHEME_NAMES",
    "SCHEME_POLICIES",
    "FeelStrategy",
    "IndividualStrategy",
    "InstanceSettings",
    "LatencySplit",
    "ModelFeelStrategy",
    "RoundRecord",
    "TrainingComplete",
    "build_instance",
    "build_scheme_strategy",
    "check_scheme",
    "policy_for_scheme",
]
