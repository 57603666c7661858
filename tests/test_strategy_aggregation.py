import numpy as np
import pytest

from strategy.aggregation import batch_weights, scaled_learning_rate, sgd_step, weighted_average


def test_batch_weights_are_batch_fractions_eq1():
    np.testing.assert_allclose(batch_weights([1, 3, 4]), [0.125, 0.375, 0.5])


@pytest.mark.parametrize("sizes", [[], [0, 2], [3, -1]])
def test_batch_weights_reject_empty_or_nonpositive(sizes):
    with pytest.raises(ValueError, match="batch sizes"):
        batch_weights(sizes)


def test_weighted_average_is_eq1_and_keeps_dtypes():
    a = {"w": np.array([1.0, 2.0], np.float32), "n": np.array(2, np.int64)}
    b = {"w": np.array([5.0, 6.0], np.float32), "n": np.array(5, np.int64)}
    out = weighted_average([a, b], batch_weights([1, 3]))
    np.testing.assert_allclose(out["w"], [4.0, 5.0])
    assert out["w"].dtype == np.float32
    assert isinstance(out["n"], np.ndarray) and out["n"].dtype == np.int64
    assert int(out["n"]) == 4  # 4.25 rounded


def test_weighted_average_rejects_different_names():
    with pytest.raises(ValueError, match="names differ"):
        weighted_average([{"a": np.zeros(1)}, {"b": np.zeros(1)}], np.array([0.5, 0.5]))


@pytest.mark.parametrize(
    ("global_batch", "base_batch", "expected"),
    [(64, 64, 0.1), (256, 64, 0.2), (16, 64, 0.05), (6, 1, 0.1 * np.sqrt(6))],
)
def test_learning_rate_scales_with_square_root_of_global_batch(global_batch, base_batch, expected):
    assert scaled_learning_rate(0.1, global_batch, base_batch) == pytest.approx(expected)


def test_sgd_step_updates_only_parameters_with_gradients():
    params = {"w": np.array([1.0, 1.0], np.float32), "bn.running_mean": np.array([3.0])}
    out = sgd_step(params, {"w": np.array([2.0, -4.0])}, learning_rate=0.5)
    np.testing.assert_allclose(out["w"], [0.0, 3.0])
    assert out["w"].dtype == np.float32
    assert out["bn.running_mean"] is params["bn.running_mean"]


def test_sgd_step_rejects_gradient_of_unknown_parameter():
    with pytest.raises(ValueError, match="unknown parameters"):
        sgd_step({"w": np.zeros(1)}, {"v": np.zeros(1)}, learning_rate=0.1)
