"""A SuperNode's node config is checked by ``Node.from_context``, naming the key."""

import pytest

from client.local import Node
from task.config import resolve_run_config
from task.errors import ConfigError

RUN = resolve_run_config({"device": "cpu"})


@pytest.mark.parametrize(
    ("node_config", "message"),
    [
        ({"cpu-ghz": 2.0}, "node-config.cpu-ghz: unknown key; known: partition-id, "),
        ({"partition-id": "0"}, "node-config.partition-id: expected an integer, got '0'"),
        ({"num-partitions": 1.5}, "node-config.num-partitions: expected an integer, got 1.5"),
        ({"partition-id": 4}, "node-config.partition-id: must be in [0, 2), got 4"),
        ({"dataset": "mnist-typo"}, "node-config.dataset: unknown dataset 'mnist-typo'"),
        ({"max-batch": 0}, "node-config.max-batch: must be >= 1, got 0"),
        ({"profile-on-start": 1}, "node-config.profile-on-start: expected true or false, got 1"),
        (
            {"profile-on-start": True, "system-model": "densenet121"},
            "node-config.profile-on-start: times the trained cnn, not system-model 'densenet121'",
        ),
    ],
)
def test_bad_node_config_names_the_key(node_config, message):
    with pytest.raises(ConfigError) as error:
        Node.from_context({"partition-id": 0, "num-partitions": 2, **node_config}, RUN)
    assert str(error.value).startswith(message)
