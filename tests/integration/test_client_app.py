import warnings

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from support.fake_grid import LocalGrid

from client.app import app
from client.fleet import FleetConfig, Workload, derive_device, profile_record
from client.local import global_model
from task.arrays import array_record, model_state, record_views
from task.codec import encoded_bits
from task.config import resolve_run_config
from task.data import load_dataset
from task.flops import training_flops_per_sample, update_flops
from task.models import build_model
from task.partition import partition_indices
from task.protocol import ProfileReport, TrainReply
from task.sampling import next_batch
from task.training import compute_gradient

NODES = 3


@pytest.fixture
def grid():
    return LocalGrid(app, NODES, run_config={"seed": 5})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("cnn", 10, 1, 8)


def _send(grid, node, message_type, content):
    message = Message(RecordDict(content), dst_node_id=1000 + node, message_type=message_type)
    (reply,) = grid.send_and_receive([message])
    assert not reply.has_error(), reply.error.reason
    return reply.content


def _train(grid, node, model, server_round=1, **config):
    content = {
        "arrays": ArrayRecord(model.state_dict()),
        "config": ConfigRecord({"server-round": server_round, **config}),
    }
    return _send(grid, node, "train", content)


def test_profile_reply_is_the_fleet_device_of_the_partition(grid, model):
    replies = [
        _send(grid, n, "query.profile", {"config": ConfigRecord({"server-round": 4})})["profile"]
        for n in range(NODES)
    ]
    parts = partition_indices(load_dataset("digits", None).y_train, NODES, "iid", seed=5)
    workload = Workload(training_flops_per_sample(model, (1, 8, 8)), update_flops(model))
    for pid, reply in enumerate(replies):
        device = derive_device(pid, NODES, FleetConfig(seed=5), workload)
        assert dict(reply) == profile_record(device, 4, len(parts[pid]), 5, NODES)
    assert sum(r["num-examples"] for r in replies) == 1437
    assert [r["cpu-hz"] for r in replies] == [0.7e9, 1.4e9, 2.1e9]


def test_train_reply_is_the_gradient_on_the_next_local_batch(grid, model):
    reply = _train(grid, 1, model, **{"batch-size": 24, "gradient-bits": 32})
    data = load_dataset("digits", None)
    part = partition_indices(data.y_train, NODES, "iid", seed=5)[1]
    batch, _ = next_batch(len(part), 24, seed=5, partition_id=1, cursor=0)
    fresh = build_model("cnn", 10, 1, 8)
    fresh.load_state_dict(model.state_dict())
    grads, loss, buffers = compute_gradient(
        fresh, data.x_train[part[batch]], data.y_train[part[batch]], torch.device("cpu")
    )
    assert list(record_views(reply["grads"])) == [name for name, _ in model.named_parameters()]
    for name, grad in grads.items():
        np.testing.assert_allclose(record_views(reply["grads"])[name], grad, rtol=1e-5, atol=1e-7)
    for name, buffer in buffers.items():
        np.testing.assert_allclose(record_views(reply["buffers"])[name], buffer, rtol=1e-5)
    assert dict(reply["metrics"]) == pytest.approx(
        {"batch-size": 24, "train-loss": loss, "partition-id": 1}
    )


def test_a_train_reply_carries_the_profile_asked_for_as_a_query_would(grid, model):
    plain = _train(grid, 2, model, **{"batch-size": 8})
    assert "profile" not in plain
    reply = _train(grid, 2, model, server_round=3, **{"batch-size": 8, "profile-round": 4})
    query = _send(grid, 2, "query.profile", {"config": ConfigRecord({"server-round": 4})})
    assert dict(reply["profile"]) == dict(query["profile"])
    other = _send(grid, 2, "query.profile", {"config": ConfigRecord({"server-round": 3})})
    assert dict(other["profile"]) != dict(query["profile"])  # the round's own fading


def test_cursor_advances_in_context_state_across_rounds(grid, model):
    first = _train(grid, 0, model, 1, **{"batch-size": 300})
    second = _train(grid, 0, model, 2, **{"batch-size": 300})
    assert grid.contexts[1000].state["sampling"]["cursor"] == 600
    assert first["metrics"]["batch-size"] == second["metrics"]["batch-size"] == 300
    assert not np.array_equal(
        record_views(first["grads"])["5.weight"], record_views(second["grads"])["5.weight"]
    )


def test_batch_is_capped_at_the_partition_size(grid, model):
    reply = _train(grid, 2, model, **{"batch-size": 1000})
    assert reply["metrics"]["batch-size"] == 479  # 1437 / 3


def test_gradients_are_encoded_to_the_configured_bits(grid, model):
    config = {"batch-size": 32, "gradient-bits": 2}
    reply = _train(grid, 0, model, 3, **config)
    again = _train(LocalGrid(app, NODES, {"seed": 5}), 0, model, 3, **config)
    assert "grads" not in reply and reply["encoding"]["bits"] == 2
    encoded, encoded_again = record_views(reply["encoded"]), record_views(again["encoded"])
    for name, view in encoded.items():
        assert view.dtype == ("uint8" if name.endswith("/levels") else "float32"), name
        np.testing.assert_array_equal(view, encoded_again[name])
    decoded = TrainReply.from_record(reply, "train")
    for name, array in decoded.update.items():
        assert len(np.unique(array)) <= 4, name
    shapes = [tuple(a.shape) for a in decoded.update.values()]
    sent = sum(8 * a.numpy().nbytes for a in reply["encoded"].values())  # as sent
    assert sent == encoded_bits(shapes, 2) < 2 * 53_098 * 1.01


def test_node_config_sets_device_fields_and_run_settings(model):
    grid = LocalGrid(app, 2, run_config={"partition": "iid"})
    grid.contexts[1000].node_config.update({"cpu-hz": 3e9, "partition": "shards"})
    content = {"config": ConfigRecord({"server-round": 1})}
    profile = _send(grid, 0, "query.profile", content)["profile"]
    assert profile["cpu-hz"] == 3e9
    assert profile["num-examples"] == 2 * (1437 // 4)  # two shards of N // (2K)


def test_missing_partition_id_is_an_error_reply():
    grid = LocalGrid(app, 1)
    del grid.contexts[1000].node_config["partition-id"]
    message = Message(
        RecordDict({"config": ConfigRecord({"server-round": 1})}), 1000, "query.profile"
    )
    (reply,) = grid.send_and_receive([message])
    assert reply.has_error() and "node-config.partition-id: missing" in reply.error.reason


def test_train_reads_a_model_received_out_of_band(grid, model):
    """Arrays over a read-only buffer (Ray's object store) train alike, without torch warnings."""
    config = ConfigRecord({"server-round": 1, "batch-size": 8, "sample-cursor": 0})
    expected = _send(
        grid, 0, "train", {"arrays": ArrayRecord(model.state_dict()), "config": config}
    )
    received = ArrayRecord(model.state_dict())
    for array in received.values():
        array.data = memoryview(array.data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reply = _send(grid, 0, "train", {"arrays": received, "config": config})
    assert not [w for w in caught if "not writable" in str(w.message)]
    for name, view in record_views(expected["grads"]).items():
        np.testing.assert_array_equal(record_views(reply["grads"])[name], view)


def test_a_gradient_reads_the_received_parameters_in_place_and_nothing_writes_them(grid, model):
    """The gradient step borrows the parameters (no copy); neither it nor a local epoch after
    it writes into the received bytes, though the gradient step updates the BN statistics."""
    received = array_record({k: v.numpy() for k, v in model.state_dict().items()})
    sent = {name: bytes(array.data) for name, array in received.items()}
    config = resolve_run_config({"device": "cpu"})
    state = model_state(received)
    borrowed = global_model(config, state, read_only_parameters=True)
    for name, value in borrowed.state_dict().items():
        is_parameter = name in dict(borrowed.named_parameters())
        assert np.shares_memory(value.numpy(), state[name].numpy()) == is_parameter, name
    data = load_dataset("digits")
    compute_gradient(borrowed, data.x_train[:16], data.y_train[:16], torch.device("cpu"))
    assert not torch.equal(borrowed.state_dict()["0.1.running_mean"], state["0.1.running_mean"])
    epoch = {"local-batch": 8, "learning-rate": 0.1, "server-round": 1, "sample-cursor": 0}
    reply = _send(grid, 0, "train.epoch", {"arrays": received, "config": ConfigRecord(epoch)})
    assert not np.array_equal(
        record_views(reply["arrays"])["0.0.weight"], state["0.0.weight"].numpy()
    )
    assert {name: bytes(array.data) for name, array in received.items()} == sent


@pytest.mark.security
@pytest.mark.parametrize("scenario", ["cpu", "gpu"])
def test_every_key_the_client_sends_is_known(model, scenario):
    """Profile and train replies, encoded or not, carried profiles and a lying one decode."""
    config = {"seed": 5, "scenario": scenario, "attacker": 1, "attack": "lying-profile"}
    grid = LocalGrid(app, 2, run_config=config)
    gradient = {"batch-size": 8, "gradient-bits": 2, "profile-round": 2}
    epoch = {"local-batch": 8, "learning-rate": 0.1, "model-bits": 8, "profile-round": 2}
    for node in range(2):
        query = _send(grid, node, "query.profile", {"config": ConfigRecord({"server-round": 1})})
        replies = {
            "train": _train(grid, node, model, **gradient),
            "train.epoch": _train_epoch(grid, node, model, epoch),
        }
        assert ProfileReport.from_record(query, scenario).partition_id == node
        for message_type, reply in replies.items():
            assert TrainReply.from_record(reply, message_type).bits < 32
            assert ProfileReport.from_record(reply, scenario).partition_id == node


def _train_epoch(grid, node, model, config):
    content = {
        "arrays": ArrayRecord(model.state_dict()),
        "config": ConfigRecord({"server-round": 1, **config}),
    }
    return _send(grid, node, "train.epoch", content)
