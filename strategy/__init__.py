"""The FEEL Flower strategy: per-round scheduling, batch-weighted gradients, server SGD."""

from strategy.individual import IndividualStrategy
from strategy.instance import InstanceSettings, build_instance
from strategy.loop import FeelStrategy
from strategy.model_feel import ModelFeelStrategy
from strategy.record import LatencySplit, RoundRecord
from strategy.rounds import (
    EvaluationSchedule,
    FeelResult,
    FinishedRound,
    RoundHook,
    TrainingState,
)
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
    "EvaluationSchedule",
    "FeelResult",
    "FeelStrategy",
    "FinishedRound",
    "IndividualStrategy",
    "InstanceSettings",
    "LatencySplit",
    "ModelFeelStrategy",
    "RoundHook",
    "RoundRecord",
    "TrainingState",
    "build_instance",
    "build_scheme_strategy",
    "check_scheme",
    "policy_for_scheme",
]
