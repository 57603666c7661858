import numpy as np
import pytest

from task.errors import ConfigError
from task.quantize import stochastic_quantize


@pytest.fixture
def gradient():
    return np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_quantization_is_unbiased(gradient, bits):
    rng = np.random.default_rng(1)
    draws = 4000
    mean = np.mean([stochastic_quantize(gradient, bits, rng) for _ in range(draws)], axis=0)
    step = (gradient.max() - gradient.min()) / (2**bits - 1)
    # each draw is off by at most one step with variance <= step^2 / 4
    np.testing.assert_allclose(mean, gradient, atol=5 * step / 2 / np.sqrt(draws))


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_values_are_levels_inside_the_range(gradient, bits):
    q = stochastic_quantize(gradient, bits, np.random.default_rng(2))
    assert q.dtype == np.float32 and q.shape == gradient.shape
    assert q.min() >= gradient.min() and q.max() <= gradient.max()
    assert len(np.unique(q)) <= 2**bits
    step = (gradient.max() - gradient.min()) / (2**bits - 1)
    assert np.all(np.abs(q - gradient) <= step * (1 + 1e-5))


def test_rounding_is_seeded(gradient):
    a = stochastic_quantize(gradient, 2, np.random.default_rng(7))
    b = stochastic_quantize(gradient, 2, np.random.default_rng(7))
    c = stochastic_quantize(gradient, 2, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_full_precision_returns_the_input(gradient):
    assert stochastic_quantize(gradient, 32, np.random.default_rng(0)) is gradient


def test_constant_and_empty_arrays_pass_through():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(stochastic_quantize(np.full(3, 0.5), 2, rng), np.full(3, 0.5))
    assert stochastic_quantize(np.zeros((0, 2)), 2, rng).shape == (0, 2)


def test_bits_below_one_name_the_field(gradient):
    with pytest.raises(ConfigError, match=r"^gradient-bits: must be >= 1, got 0$"):
        stochastic_quantize(gradient, 0, np.random.default_rng(0))
