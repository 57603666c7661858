"""The README's worked energy policy (section "Energy, beside time") runs as printed."""

import re

import numpy as np
import pytest
from support.paths import ROOT
from support.scheduler_cases import small_instance

from scheduler import Policy, get_policy, round_energy


def _readme_policy() -> type:
    text = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "EnergyCapped" in b]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace["EnergyCapped"]


@pytest.mark.parametrize("seed", range(12))
def test_every_device_keeps_to_the_cap_unless_its_smallest_batch_exceeds_it(seed):
    instance = small_instance(seed)
    optimal = get_policy("optimal").allocate(instance)
    cap = float(np.median(optimal.energy.device_j))
    policy = _readme_policy()(cap_j=cap)
    assert isinstance(policy, Policy)
    allocation = policy.allocate(instance)
    smallest = round_energy(instance, np.full(instance.num_devices, instance.min_batch)).device_j
    within = allocation.energy.device_j <= cap * (1 + 1e-12)
    assert np.all(within | (allocation.batch_sizes == instance.min_batch))
    assert np.all(within | (smallest > cap))
    assert np.all(allocation.batch_sizes <= optimal.batch_sizes)
    assert allocation.efficiency <= optimal.efficiency * (1 + 1e-9)


def test_a_cap_no_device_reaches_gives_the_proposed_batches():
    instance = small_instance(4)
    optimal = get_policy("optimal").allocate(instance)
    allocation = _readme_policy()(cap_j=np.inf).allocate(instance)
    np.testing.assert_array_equal(allocation.batch_sizes, optimal.batch_sizes)
