"""Training schemes by name (Sec. VI-C, VI-D): each builds a strategy from the run config.

======================  =======================================================================
``proposed``            the paper's optimal joint batch and slot policy (Theorems 1-2)
``online``              B_k = 1; slots optimal for the batches, or equal with ``equal-slots``
``full``                B_k = B^max; slots as for ``online``
``random``              B_k uniform in [1, B^max] per device and round, drawn from ``seed``
``gradient-feel``       one SGD step per round on each device's entire local data, B_k = N_k;
                        equal slots
``gradient-feel-bmax``  the same on B_k = B^max capped at the data (or ``fixed-batch``)
``model-feel``          FedAvg: one local epoch per device, models averaged by data size
``individual``          devices train alone until their loss stops improving, then one exchange
======================  =======================================================================

Any other name is a scheduler policy for the gradient scheme: a registered one (``fixed``,
``equal``, ``optimal``, ...) or a user's own class as ``package.module:Class``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scheduler import Instance, Policy, get_policy
from scheduler.policies import FixedBatchPolicy
from strategy.aggregation import Aggregator
from strategy.deadlines import Deadlines
from strategy.gradient_feel import GradientFeelStrategy, LocalDataPolicy
from strategy.identity import PartitionPins
from strategy.individual import IndividualStrategy
from strategy.instance import InstanceSettings
from strategy.loop import FeelStrategy
from strategy.model_feel import ModelFeelStrategy

# Scheme names that differ from the scheduler's policy names; any other gradient scheme is
# passed to ``scheduler.get_policy`` as is (a registered name or ``package.module:Class``).
SCHEME_POLICIES = {"proposed": "optimal"}
BASELINES = ("online", "full", "random")
MODEL_SCHEMES = {"model-feel": ModelFeelStrategy, "individual": IndividualStrategy}
# Schemes whose strategy picks the batches itself, without a scheduler policy.
OWN_BATCH_SCHEMES = {LocalDataPolicy.name: GradientFeelStrategy}
SCHEME_NAMES = ("proposed", *BASELINES, *OWN_BATCH_SCHEMES, *MODEL_SCHEMES)


class GradientFeelBmaxPolicy(FixedBatchPolicy):
    """Gradient-based FEEL read with B^max (Sec. VI-C): every device one batch, equal slots.

    ``batch=0`` takes the largest batch of the instance, B^max capped at the smallest local
    dataset; a positive ``batch`` above that cap is capped too. The paper's own reading,
    the entire local data, is ``gradient-feel`` (:class:`~strategy.gradient_feel.LocalDataPolicy`).
    """

    name = "gradient-feel-bmax"

    def __init__(self, batch: int = 0) -> None:
        super().__init__(batch or 1, equal_slots=True)
        self.batch = batch

    def batches(self, instance: Instance, round_index: int) -> np.ndarray:
        """Return ``min(batch or B^max, B^max)`` for every device."""
        size = min(self.batch or instance.max_batch, instance.max_batch)
        return np.full(instance.num_devices, size, dtype=np.int64)


def policy_for_scheme(scheme: str, **options: Any) -> Policy:
    """Build the scheduler policy of gradient scheme ``scheme`` with ``options``.

    Raises
    ------
    scheduler.PolicyError
        For an unknown scheme or an import path that does not load.
    """
    if scheme == GradientFeelBmaxPolicy.name:
        return GradientFeelBmaxPolicy(**options)
    return get_policy(SCHEME_POLICIES.get(scheme, scheme), **options)


def scheme_policy(config: Mapping[str, Any]) -> Policy:
    """Return the policy of the run config's gradient scheme, with its options from the config."""
    scheme = config["scheme"]
    if scheme in BASELINES:
        options: dict[str, Any] = {"equal_slots": config["equal-slots"]}
        if scheme == "random":
            options["seed"] = config["seed"]
        return policy_for_scheme(scheme, **options)
    if scheme == GradientFeelBmaxPolicy.name:
        return policy_for_scheme(scheme, batch=config["fixed-batch"])
    return policy_for_scheme(scheme)


def check_scheme(config: Mapping[str, Any]) -> None:
    """Check that the run config's scheme can be built.

    Raises
    ------
    scheduler.PolicyError
        For an unknown scheme or an import path that does not load.
    """
    if config["scheme"] not in (*MODEL_SCHEMES, *OWN_BATCH_SCHEMES):
        scheme_policy(config)


def build_scheme_strategy(
    config: Mapping[str, Any],
    settings: InstanceSettings,
    deadlines: Deadlines | None = None,
    pins: PartitionPins | None = None,
) -> FeelStrategy:
    """Build the strategy of the run config's scheme, with ``deadlines`` and ``pins``.

    Raises
    ------
    scheduler.PolicyError
        For an unknown scheme or an import path that does not load.
    """
    shared: dict[str, Any] = {
        "settings": settings,
        "learning_rate": config["learning-rate"],
        "base_batch": config["base-batch"],
        "lr_scaling": config["lr-scaling"],
        "min_nodes": config["min-nodes"],
        "deadlines": deadlines,
        "pins": pins,
        "time_budget_s": config["time-budget-s"],
        "min_devices": config["min-devices"],
        "seed": config["seed"],
        "aggregator": Aggregator(
            config["aggregation"], config["clip-multiple"], config["trim-fraction"]
        ),
    }
    scheme = config["scheme"]
    gradient = {"gradient_bits": config["gradient-bits"], "bn_statistics": config["bn-statistics"]}
    if scheme in OWN_BATCH_SCHEMES:
        return OWN_BATCH_SCHEMES[scheme](**gradient, **shared)
    if scheme not in MODEL_SCHEMES:
        return FeelStrategy(policy=scheme_policy(config), **gradient, **shared)
    options: dict[str, Any] = {
        "local_batch": config["local-batch"],
        "equal_slots": config["equal-slots"],
        "model_bits": config["model-bits"],
    }
    if scheme == "individual":
        options.update(
            patience=config["patience"],
            min_delta=config["min-delta"],
            max_rounds=config["num-server-rounds"],
        )
    return MODEL_SCHEMES[scheme](**shared, **options)
