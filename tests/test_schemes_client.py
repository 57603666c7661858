"""The ClientApp's local epoch of the model-based schemes (client.epoch, ``train.epoch``)."""

import math

import numpy as np
import torch
from fake_grid import LocalGrid
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

from client.app import app as client_app
from client.epoch import local_epoch
from client.local import Node, local_indices, new_model
from task.config import resolve_run_config


def node(pid=0):
    return Node(pid, 3, resolve_run_config({"device": "cpu"}), {})


def initial_state():
    torch.manual_seed(0)
    return new_model(node().config).state_dict()


def test_one_epoch_visits_every_local_example_in_mini_batches():
    state = initial_state()
    result = local_epoch(node(), state, local_batch=32, learning_rate=0.05, epoch=0)
    examples = len(local_indices(node()))
    assert result.num_examples == examples
    assert set(result.arrays) == set(state)
    steps = int(result.arrays["0.1.num_batches_tracked"])
    assert steps == math.ceil(examples / 32)
    changed = [k for k, v in state.items() if not np.array_equal(v.numpy(), result.arrays[k])]
    assert "0.0.weight" in changed and np.isfinite(result.loss)


def test_epoch_is_reproducible_and_its_order_depends_on_the_epoch():
    state = initial_state()
    first = local_epoch(node(), state, 32, 0.05, epoch=0)
    again = local_epoch(node(), state, 32, 0.05, epoch=0)
    later = local_epoch(node(), state, 32, 0.05, epoch=1)
    for key in first.arrays:
        np.testing.assert_array_equal(first.arrays[key], again.arrays[key])
    assert not np.array_equal(first.arrays["0.0.weight"], later.arrays["0.0.weight"])


def test_train_epoch_message_returns_the_model_and_the_examples():
    grid = LocalGrid(client_app, num_nodes=3, run_config={"device": "cpu"})
    config = ConfigRecord({"server-round": 1, "local-batch": 50, "learning-rate": 0.05})
    message = Message(
        RecordDict({"arrays": ArrayRecord(initial_state()), "config": config}),
        dst_node_id=1001,
        message_type="train.epoch",
        group_id="1",
    )
    (reply,) = grid.send_and_receive([message])
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    metrics = reply.content["metrics"]
    assert metrics["num-examples"] == len(local_indices(node(1)))
    assert metrics["partition-id"] == 1
    assert set(reply.content["arrays"]) == set(initial_state())
