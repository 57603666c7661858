"""The global gradient broadcast (strategy.broadcast): encoded below 32 bits, seeded per round."""

import numpy as np
import pytest

from strategy.broadcast import broadcast_gradient, broadcast_model, encoded_broadcast
from task.codec import decode, encoded_bits

GRADIENT = {
    "w": np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32),
    "b": np.linspace(-1, 1, 5, dtype=np.float32),
}


def test_at_32_bits_the_broadcast_is_the_gradient_itself():
    assert broadcast_gradient(GRADIENT, 32, seed=1, server_round=3) is GRADIENT


@pytest.mark.parametrize("bits", [1, 4, 8, 16])
def test_below_32_bits_the_broadcast_is_the_decoded_encoding_of_its_size(bits):
    sent = broadcast_gradient(GRADIENT, bits, seed=1, server_round=3)
    encoded = encoded_broadcast(GRADIENT, bits, seed=1, server_round=3)
    for name, tensor in encoded.items():
        np.testing.assert_array_equal(sent[name], decode(tensor))
        assert sent[name].shape == GRADIENT[name].shape and sent[name].dtype == np.float32
    shapes = [g.shape for g in GRADIENT.values()]
    assert sum(t.num_bits for t in encoded.values()) == encoded_bits(shapes, bits)


def test_the_broadcast_is_seeded_by_seed_and_round_only():
    first = broadcast_gradient(GRADIENT, 2, seed=1, server_round=3)
    again = broadcast_gradient(GRADIENT, 2, seed=1, server_round=3)
    later = broadcast_gradient(GRADIENT, 2, seed=1, server_round=4)
    assert all(np.array_equal(first[n], again[n]) for n in GRADIENT)
    assert not all(np.array_equal(first[n], later[n]) for n in GRADIENT)


def test_model_download_sends_the_parameters_change_and_buffers_plain():
    rng = np.random.default_rng(1)
    reference = {
        "w": rng.normal(size=(4, 5)).astype(np.float32),
        "bn.running_var": np.ones(5, np.float32),
    }
    model = {"w": reference["w"] + 0.1, "bn.running_var": np.full(5, 2.0, np.float32)}
    assert broadcast_model(model, reference, ["w"], 32, 0, 1) == model
    received = broadcast_model(model, reference, ["w"], 4, 0, 1)
    change = broadcast_gradient({"w": model["w"] - reference["w"]}, 4, 0, 1)["w"]
    np.testing.assert_array_equal(received["w"], reference["w"] + change)
    np.testing.assert_array_equal(received["bn.running_var"], model["bn.running_var"])
