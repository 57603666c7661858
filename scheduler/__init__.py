"""Optimal joint batch-size and TDMA time-slot allocation for federated edge learning.

Implements Ren, Yu and Ding, "Accelerating DNN Training in Wireless Federated Edge Learning
Systems" (IEEE JSAC 2021): the system model (Sec. II-III, V), the optimal policy
(Theorems 1-2, Lemma 2), the baselines of Sec. VI and the devices' energy of a round.
Pure numpy and scipy.
"""

from scheduler.allocation import (
    Allocation,
    evaluate,
    optimal_downlink_slots,
    optimal_uplink_slots,
    restrict,
)
from scheduler.energy import DeviceEnergy, round_energy
from scheduler.instance import Instance, InstanceError
from scheduler.policies import Policy
from scheduler.registry import PolicyError, get_policy, policy_names, register_policy
from scheduler.relaxed import RelaxedSolution, solve_relaxed

__all__ = [
    "Allocation",
    "DeviceEnergy",
    "Instance",
    "InstanceError",
    "Policy",
    "PolicyError",
    "RelaxedSolution",
    "evaluate",
    "get_policy",
    "optimal_downlink_slots",
    "optimal_uplink_slots",
    "policy_names",
    "register_policy",
    "restrict",
    "round_energy",
    "solve_relaxed",
]
