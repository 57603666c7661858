"""The local epoch of the model-based schemes (client.epoch)."""

import math

import numpy as np
from support.nodes import initial_state, node

from client.epoch import local_epoch
from client.local import shard


def test_one_epoch_visits_every_local_example_in_mini_batches():
    state = initial_state()
    result = local_epoch(node(), state, local_batch=32, learning_rate=0.05, epoch=0)
    examples = len(shard(node()))
    assert result.num_examples == examples
    arrays = {**result.parameters, **result.buffers}
    assert set(arrays) == set(state) and "0.0.weight" in result.parameters
    steps = int(result.buffers["0.1.num_batches_tracked"])
    assert steps == math.ceil(examples / 32)
    changed = [k for k, v in state.items() if not np.array_equal(v.numpy(), arrays[k])]
    assert "0.0.weight" in changed and np.isfinite(result.loss)


def test_epoch_is_reproducible_and_its_order_depends_on_the_epoch():
    state = initial_state()
    first = local_epoch(node(), state, 32, 0.05, epoch=0)
    again = local_epoch(node(), state, 32, 0.05, epoch=0)
    later = local_epoch(node(), state, 32, 0.05, epoch=1)
    for key in first.parameters:
        np.testing.assert_array_equal(first.parameters[key], again.parameters[key])
    assert not np.array_equal(first.parameters["0.0.weight"], later.parameters["0.0.weight"])
