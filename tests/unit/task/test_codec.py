"""Encoded gradients and model updates (task.codec): the bits charged are the bits sent."""

import numpy as np
import pytest

from client.local import Node, sent_gradient, sent_model
from server.build import instance_settings
from strategy.model_feel import received_model
from task.codec import encode_arrays, encoded_bits, pack_levels, unpack_levels
from task.config import resolve_run_config
from task.flops import parameter_count, parameter_shapes
from task.models import build_model
from task.protocol import TRAIN_EPOCH, TRAIN_GRADIENT, TrainReply, train_reply_record


@pytest.fixture(scope="module")
def grads():
    model = build_model("cnn", 10, 1, 8)
    rng = np.random.default_rng(0)
    return {
        name: rng.normal(size=p.shape).astype(np.float32) for name, p in model.named_parameters()
    }


def _payload_bits(content):
    """Bits of the arrays of a reply's update records (levels, floats, or float32 values)."""
    records = [content[key] for key in ("encoded", "grads", "arrays") if key in content]
    return sum(8 * array.numpy().nbytes for record in records for array in record.values())


@pytest.mark.parametrize("bits", range(1, 33))
def test_bits_charged_are_the_bits_encoded_in_the_reply(grads, bits):
    shapes = [g.shape for g in grads.values()]
    node = Node(0, 1, {"seed": 0}, {})
    sent = sent_gradient(node, grads, bits, server_round=1)
    content = train_reply_record(TRAIN_GRADIENT, sent, {"batch-size": 1, "train-loss": 0.0})
    assert _payload_bits(content) == encoded_bits(shapes, bits)
    if bits < 32:
        assert sum(t.num_bits for t in sent.values()) == encoded_bits(shapes, bits)
    reply = TrainReply.from_record(content, TRAIN_GRADIENT)
    assert reply.bits == bits and set(reply.update) == set(grads)
    for name, grad in grads.items():
        assert reply.update[name].shape == grad.shape and reply.update[name].dtype == np.float32


@pytest.mark.parametrize("bits", [1, 2, 5, 8, 16, 31, 32])
def test_model_upload_bits_charged_are_the_bits_encoded_in_the_reply(bits):
    model = build_model("cnn", 10, 1, 8)
    state = {name: value.numpy() for name, value in model.state_dict().items()}
    names = [name for name, _ in model.named_parameters()]
    rng = np.random.default_rng(bits)
    local = {n: state[n] + rng.normal(size=state[n].shape).astype(np.float32) for n in names}
    buffers = {name: value for name, value in state.items() if name not in names}
    node = Node(0, 1, {"seed": 0}, {})
    sent, buffer_change = sent_model(node, local, buffers, state, bits, server_round=2)
    metrics = {"num-examples": 5, "train-loss": 0.0}
    content = train_reply_record(TRAIN_EPOCH, sent, metrics, buffer_change)
    config = resolve_run_config({"scheme": "model-feel", "model-bits": bits})
    charged = instance_settings(config, parameter_shapes(model)).gradient_size_bits
    assert _payload_bits(content) == charged == encoded_bits(parameter_shapes(model), bits)
    reply = TrainReply.from_record(content, TRAIN_EPOCH)
    assert reply.bits == bits and set(reply.buffers) == set(buffers)
    received = received_model(state, reply.update, reply.buffers)
    assert list(received) == list(state)
    for name in names:
        step = np.ptp(local[name] - state[name]) / max(2**bits - 1, 1)
        np.testing.assert_allclose(received[name], local[name], atol=step * 1.01 + 1e-6)


def test_full_precision_size_is_b_times_p():
    model = build_model("cnn", 10, 1, 8)
    assert encoded_bits(parameter_shapes(model), 32) == 32 * parameter_count(model) == 32 * 53_098


def test_sizes_count_padding_and_floats_per_tensor():
    assert encoded_bits([(3,), (2, 2)], 1) == 8 + 32 + 8 + 32
    assert encoded_bits([(3,), (2, 2)], 3) == 16 + 64 + 16 + 64
    assert encoded_bits([(3,), (2, 2)], 8) == 24 + 64 + 32 + 64


@pytest.mark.parametrize("bits", [1, 2, 5, 8, 13, 31])
def test_levels_round_trip(bits):
    levels = np.random.default_rng(bits).integers(0, 2**bits, size=101).astype(np.uint32)
    packed = pack_levels(levels, bits)
    assert packed.dtype == np.uint8 and packed.size == -(-101 * bits // 8)
    np.testing.assert_array_equal(unpack_levels(packed, bits, 101), levels)


def test_encoding_draws_from_one_stream_in_order(grads):
    a = encode_arrays(grads, 4, np.random.default_rng(1))
    b = encode_arrays(grads, 4, np.random.default_rng(1))
    assert all(np.array_equal(a[n].packed, b[n].packed) for n in grads)
