"""The ClientApp's ``train.epoch`` message on the in-process grid (model-based schemes)."""

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from support.fake_grid import LocalGrid
from support.nodes import initial_state, node

from client.app import app as client_app
from client.local import local_indices


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
