"""The stochastic quantizers (task.quantize) through the codec (task.codec): unbiased, seeded."""

import numpy as np
import pytest

from task.codec import decode, encode
from task.errors import ConfigError


@pytest.fixture
def gradient():
    return np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)


def _spread(gradient, bits):
    """The largest error of one draw: a step, or 2 max|x| at one bit."""
    if bits == 1:
        return 2 * np.abs(gradient).max()
    return (gradient.max() - gradient.min()) / (2**bits - 1)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 16])
def test_quantization_is_unbiased(gradient, bits):
    rng = np.random.default_rng(1)
    draws = 4000
    samples = [decode(encode(gradient, bits, rng)) for _ in range(draws)]
    mean = np.mean(samples, axis=0, dtype=np.float64)  # float32 sums would drift
    # each draw is off by at most one spread, with variance <= spread^2 / 4
    np.testing.assert_allclose(
        mean, gradient, atol=5 * _spread(gradient, bits) / 2 / np.sqrt(draws)
    )


@pytest.mark.parametrize("bits", [2, 3, 8])
def test_uniform_values_are_levels_inside_the_range(gradient, bits):
    q = decode(encode(gradient, bits, np.random.default_rng(2)))
    assert q.dtype == np.float32 and q.shape == gradient.shape
    assert q.min() >= gradient.min() * (1 + 1e-6) and q.max() <= gradient.max() * (1 + 1e-6)
    assert len(np.unique(q)) <= 2**bits
    assert np.all(np.abs(q - gradient) <= _spread(gradient, bits) * (1 + 1e-5))


def test_one_bit_sends_plus_or_minus_the_largest_magnitude(gradient):
    encoded = encode(gradient, 1, np.random.default_rng(3))
    scale = np.abs(gradient).max()
    assert encoded.floats.tolist() == [scale]
    np.testing.assert_array_equal(np.abs(decode(encoded)), np.full(gradient.shape, scale))


def test_rounding_is_seeded(gradient):
    a = decode(encode(gradient, 2, np.random.default_rng(7)))
    b = decode(encode(gradient, 2, np.random.default_rng(7)))
    c = decode(encode(gradient, 2, np.random.default_rng(8)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("bits", [1, 2, 7])
def test_constant_and_empty_arrays_pass_through(bits):
    rng = np.random.default_rng(0)
    constant = np.full(3, 0.5 if bits > 1 else 0.0, np.float32)
    np.testing.assert_array_equal(decode(encode(constant, bits, rng)), constant)
    assert decode(encode(np.zeros((0, 2), np.float32), bits, rng)).shape == (0, 2)


@pytest.mark.parametrize("bits", [0, 32])
def test_bits_outside_the_quantized_range_name_the_field(gradient, bits):
    with pytest.raises(
        ConfigError, match=rf"^gradient-bits: must be between 1 and 31, got {bits}$"
    ):
        encode(gradient, bits, np.random.default_rng(0))
