"""FeelStrategy with faulty devices: profile-time exclusion, duplicates, odd splits, min-devices."""

import logging

import numpy as np
import pytest
from flwr.app import ConfigRecord
from flwr.clientapp import ClientApp
from support.fake_grid import LocalGrid
from support.scripted import initial_arrays, make_strategy, scripted_client

from strategy import policy_for_scheme
from strategy.validation import TooFewDevicesError
from task.arrays import array_record, record_views


@pytest.fixture(autouse=True)
def quiet_flower():
    logging.getLogger("flwr").setLevel(logging.ERROR)


def wrapped(changes):
    """The scripted client, with ``changes[(message_type, partition)](reply)`` applied."""
    inner, app = scripted_client(), ClientApp()

    def handle(msg, context):
        reply = inner(msg, context)
        change = changes.get((msg.metadata.message_type, context.node_config["partition-id"]))
        return change(reply) if change else reply

    app.query("profile")(handle)
    app.train()(handle)
    return app


def failing(reply):
    raise RuntimeError("sensor offline")


def claims_partition_1(reply):
    reply.content["profile"]["partition-id"] = 1
    return reply


def relabelled(reply):
    """Send the gradient of ``w`` as a buffer and a BN statistic as the gradient."""
    grads, buffers = record_views(reply.content["grads"]), record_views(reply.content["buffers"])
    reply.content["grads"] = array_record({"bn.running_mean": buffers["bn.running_mean"]})
    reply.content["buffers"] = array_record(
        {"w": grads["w"], "bn.num_batches_tracked": buffers["bn.num_batches_tracked"]}
    )
    return reply


def with_nan(reply):
    grads = {**record_views(reply.content["grads"]), "w": np.full(2, np.nan, np.float32)}
    reply.content["grads"] = array_record(grads)
    return reply


def run_round(changes, nodes=3, min_devices=1):
    strategy = make_strategy(policy_for_scheme("full"))
    strategy.min_devices = min_devices
    grid = LocalGrid(wrapped(changes), num_nodes=nodes)
    result = strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=1)
    return strategy.records[0], result, grid


def test_device_failing_its_profile_query_is_not_scheduled():
    record, _, grid = run_round({("query.profile", 0): failing})
    assert record.excluded == {"node 1000": "error: RuntimeError('sensor offline')"}
    assert record.partition_ids == record.participants == [1, 2]
    trained = {m.metadata.dst_node_id for m in grid.sent if m.metadata.message_type == "train"}
    assert trained == {1001, 1002}


def with_extra_record(reply):
    reply.content["smuggled"] = ConfigRecord({"anything": 1})
    return reply


@pytest.mark.security
def test_a_query_reply_holding_more_than_its_profile_is_left_out():
    record, _, _ = run_round({("query.profile", 1): with_extra_record})
    assert record.excluded == {"1": "query reply has unknown key 'smuggled'"}
    assert record.participants == [0, 2]


@pytest.mark.security
def test_two_devices_claiming_an_unpinned_partition_are_both_left_out():
    record, _, _ = run_round({("query.profile", 2): claims_partition_1})
    reason = "partition id 1 claimed by 2 nodes at once"
    assert record.excluded == {"node 1001": reason, "node 1002": reason}
    assert record.participants == [0]


def test_reply_splitting_the_model_unlike_the_others_is_left_out():
    changes = {("train", 1): relabelled}
    record, result, _ = run_round(changes)
    assert record.excluded == {"1": "splits the model unlike the other devices"}
    assert record.participants == [0, 2]
    assert np.all(np.isfinite(record_views(result.arrays)["w"]))


def test_round_is_not_applied_below_min_devices():
    changes = {("query.profile", 0): failing, ("train", 1): with_nan}
    with pytest.raises(TooFewDevicesError, match=r"round 1: 1 usable device.* min-devices 2"):
        run_round(changes, min_devices=2)


class GoneGrid(LocalGrid):
    """A LocalGrid whose nodes in ``gone`` are no longer connected."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gone = set()

    def get_node_ids(self):
        return [n for n in super().get_node_ids() if n not in self.gone]


def test_the_old_node_of_a_device_that_came_back_is_not_listed_as_excluded():
    """Node 1003 is off in round 1; in round 2 node 1002 is gone and 1003 is partition 2."""
    inner, app = scripted_client(), ClientApp()

    def as_partition_2(record):
        record["partition-id"] = 2

    @app.query("profile")
    def profile(msg, context):
        if (context.node_id, int(msg.content["config"]["server-round"])) in {(1003, 1), (1002, 2)}:
            raise RuntimeError("offline")
        reply = inner(msg, context)
        if context.node_id == 1003:
            as_partition_2(reply.content["profile"])
        return reply

    grid = GoneGrid(app, num_nodes=4)

    @app.train()
    def train(msg, context):
        if context.node_id == 1002:  # it goes before sending its round-2 profile
            del msg.content["config"]["profile-round"]
            grid.gone.add(1002)
        reply = inner(msg, context)
        if context.node_id == 1003:
            as_partition_2(reply.content["metrics"])
        return reply

    strategy = make_strategy(policy_for_scheme("full"))
    strategy.start(grid=grid, initial_arrays=initial_arrays(), num_rounds=2)
    first, second = strategy.records
    assert first.excluded == {"node 1003": "error: RuntimeError('offline')"}
    assert first.participants == second.participants == [0, 1, 2]
    assert second.excluded == {}  # partition 2 took part, under node 1003
