"""Model-based FEEL's upload: the device encodes its update, the server adds the reference."""

import numpy as np

from client.local import Node, sent_model
from strategy.model_feel import received_model
from task.codec import decode

REFERENCE = {
    "w": np.linspace(-1, 1, 1000, dtype=np.float32),
    "bn.mean": np.zeros(3, np.float32),
    "bn.count": np.array(3, np.int64),
}


def test_the_server_adds_the_uploaded_change_to_the_model_it_sent_in_its_order():
    change = {"w": np.full(1000, 0.25, np.float32)}
    buffers = {"bn.count": np.array(1, np.int64), "bn.mean": np.ones(3, np.float32)}
    model = received_model(REFERENCE, change, buffers)
    assert list(model) == list(REFERENCE)
    np.testing.assert_array_equal(model["w"], REFERENCE["w"] + np.float32(0.25))
    assert model["bn.count"] == 4 and model["bn.mean"].tolist() == [1.0] * 3


def test_the_upload_quantizes_the_change_unbiased_and_keeps_32_bits_exact():
    rng = np.random.default_rng(0)
    local = {"w": REFERENCE["w"] + rng.normal(size=1000).astype(np.float32)}
    buffers = {"bn.mean": np.ones(3, np.float32), "bn.count": np.array(5, np.int64)}
    node = Node(0, 1, {"seed": 0}, {})
    change, buffer_change = sent_model(node, local, buffers, REFERENCE, 32, server_round=1)
    np.testing.assert_array_equal(change["w"], local["w"] - REFERENCE["w"])
    assert buffer_change["bn.count"] == 2
    encoded, buffer_change = sent_model(node, local, buffers, REFERENCE, 4, server_round=1)
    model = received_model(REFERENCE, {"w": decode(encoded["w"])}, buffer_change)
    assert model["bn.count"] == 5 and model["bn.mean"].tolist() == [1.0] * 3
    step = np.ptp(local["w"] - REFERENCE["w"]) / (2**4 - 1)
    error = model["w"] - local["w"]
    assert np.all(np.abs(error) <= step * 1.001) and np.any(error != 0)
    assert abs(error.mean()) < step / 10  # unbiased
