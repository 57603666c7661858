"""The ClientApp's ``train.epoch`` message on the in-process grid (model-based schemes)."""

import math

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from support.fake_grid import LocalGrid
from support.nodes import initial_state, node

from client.app import app as client_app
from client.local import shard
from server.build import build_strategy
from strategy.broadcast import broadcast_gradient
from strategy.model_feel import received_model
from task.arrays import record_views
from task.config import resolve_run_config
from task.flops import parameter_shapes
from task.models import build_model
from task.protocol import TrainReply


def epoch_reply(**config):
    grid = LocalGrid(client_app, num_nodes=3, run_config={"device": "cpu"})
    config = {"server-round": 1, "local-batch": 50, "learning-rate": 0.05, **config}
    message = Message(
        RecordDict({"arrays": ArrayRecord(initial_state()), "config": ConfigRecord(config)}),
        dst_node_id=1001,
        message_type="train.epoch",
        group_id="1",
    )
    (reply,) = grid.send_and_receive([message])
    assert not reply.has_error(), reply.error.reason if reply.has_error() else ""
    return reply.content


def test_train_epoch_message_returns_the_model_and_the_examples():
    content = epoch_reply()
    metrics = content["metrics"]
    assert metrics["num-examples"] == len(shard(node(1)))
    assert metrics["partition-id"] == 1
    parameters = {name for name, _ in build_model("cnn", 10, 1, 8).named_parameters()}
    sent, buffers = record_views(content["arrays"]), record_views(content["buffers"])
    assert set(sent) == parameters
    assert set(sent) | set(buffers) == set(initial_state())


def test_with_model_bits_the_device_sends_the_change_encoded_below_32_bits():
    whole = TrainReply.from_record(epoch_reply(), "train.epoch")
    reference = {name: value.numpy() for name, value in initial_state().items()}
    exact = TrainReply.from_record(epoch_reply(**{"model-bits": 32}), "train.epoch")
    for name, value in {**whole.update, **whole.buffers}.items():
        change = {**exact.update, **exact.buffers}[name]
        np.testing.assert_array_equal(change, value - reference[name])
    content = epoch_reply(**{"model-bits": 8})
    assert "arrays" not in content and content["encoding"]["bits"] == 8
    steps = math.ceil(len(shard(node(1))) / 50)
    assert record_views(content["buffers"])["0.1.num_batches_tracked"] == steps  # exact
    reply = TrainReply.from_record(content, "train.epoch")
    model = received_model(reference, reply.update, reply.buffers)
    for name, value in whole.update.items():
        step = np.ptp(value - reference[name]) / 255
        np.testing.assert_allclose(model[name], value, atol=step * 1.01 + 1e-6)
    for name, value in whole.buffers.items():  # plain: exact up to float32 rounding
        np.testing.assert_allclose(model[name], value, rtol=1e-6, atol=1e-7)


def test_model_feel_round_at_8_bits_averages_the_reference_plus_the_decoded_updates():
    overrides = {"scheme": "model-feel", "model-bits": 8, "min-nodes": 3, "device": "cpu"}
    config = resolve_run_config(overrides)
    state = initial_state()
    model = build_model("cnn", 10, 1, 8)
    strategy = build_strategy(config, parameter_shapes(model))
    grid = LocalGrid(client_app, num_nodes=3, run_config=config)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(state), num_rounds=1)
    replies = [r.content for r in grid.replies if r.metadata.message_type == "train.epoch"]
    assert len(replies) == 3 and all(c["encoding"]["bits"] == 8 for c in replies)
    reference = {name: value.numpy() for name, value in state.items()}
    decoded = [TrainReply.from_record(c, "train.epoch") for c in replies]
    examples = np.array([d.weight for d in decoded])
    average = {}
    for name, value in reference.items():
        if name in decoded[0].update:
            models = [value + d.update[name] for d in decoded]  # the model sent + the change
            average[name] = np.tensordot(examples / examples.sum(), np.stack(models), axes=1)
        else:
            assert name in decoded[0].buffers
    # the download at 8 bits too: the average's change from the reference, encoded
    received = broadcast_gradient(
        {name: average[name] - reference[name] for name in average}, 8, config["seed"], 1
    )
    for name, change in received.items():
        actual = record_views(result.arrays)[name]
        np.testing.assert_allclose(actual, reference[name] + change, rtol=1e-6, atol=1e-6)
        assert not np.allclose(actual, average[name], rtol=0, atol=1e-9)
    assert strategy.records[0].participants == [0, 1, 2]
    sent = sum(8 * a.numpy().nbytes for a in replies[0]["encoded"].values())
    assert strategy.settings.gradient_size_bits == sent
