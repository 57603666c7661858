import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from strategy.aggregation import (
    batch_weights,
    global_batch_statistics,
    scaled_learning_rate,
    sgd_step,
    updated_statistics,
    weighted_average,
)


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


@given(
    st.sampled_from([np.float32, np.float64, np.float16]),
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    st.lists(st.integers(1, 64), min_size=1, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_average_and_step_match_float64_reference_and_leave_inputs(dtype, shape, sizes, fortran):
    """Float32, float64 and float16 gradients; C- and Fortran-ordered inputs mixed."""
    rng = np.random.default_rng(len(sizes))
    grads = [{"g": rng.normal(size=shape).astype(dtype)} for _ in sizes]
    for grad, f in zip(grads, fortran, strict=False):
        grad["g"] = np.array(grad["g"], order="F" if f else "C")
    before = [g["g"].copy() for g in grads]
    weights = batch_weights(sizes)
    mean = weighted_average(grads, weights)["g"]
    reference = sum(w * g["g"].astype(np.float64) for w, g in zip(weights, grads, strict=True))
    tolerance = 1e-2 if dtype == np.float16 else 1e-5
    assert mean.dtype == dtype and mean.shape == shape
    np.testing.assert_allclose(mean, reference, rtol=tolerance, atol=tolerance)
    params = {"g": np.ones(shape, dtype, order="F")}
    stepped = sgd_step(params, {"g": mean}, learning_rate=0.5)["g"]
    np.testing.assert_allclose(stepped, 1 - 0.5 * reference, rtol=tolerance, atol=tolerance)
    assert stepped.dtype == dtype and np.all(params["g"] == 1)
    assert all(np.array_equal(g["g"], b) for g, b in zip(grads, before, strict=True))


def test_learning_rate_law_is_sqrt_by_default_or_fixed():
    assert scaled_learning_rate(0.05, 256, 64) == pytest.approx(0.1)
    assert scaled_learning_rate(0.05, 256, 64, "sqrt") == pytest.approx(0.1)
    assert scaled_learning_rate(0.05, 256, 64, "fixed") == 0.05
    with pytest.raises(ValueError, match="scaling"):
        scaled_learning_rate(0.05, 256, 64, "linear")


def test_devices_batch_statistics_pool_into_the_global_batchs():
    torch = pytest.importorskip("torch")
    from task.data import load_dataset
    from task.models import build_model
    from task.training import compute_gradient

    digits = load_dataset("digits", None)
    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    sizes, devices = [7, 20, 33], []
    for start, size in zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
        model.load_state_dict(state)
        x, y = digits.x_train[start : start + size], digits.y_train[start : start + size]
        devices.append(compute_gradient(model, x, y, torch.device("cpu"))[2])
    model.load_state_dict(state)
    x, y = digits.x_train[: sum(sizes)], digits.y_train[: sum(sizes)]
    whole = compute_gradient(model, x, y, torch.device("cpu"))[2]
    model_arrays = {k: v.numpy() for k, v in state.items()}
    pooled = global_batch_statistics(devices, batch_weights(sizes), model_arrays)
    assert set(pooled) == set(whole)
    # exact at the first BN layer; a deeper one sees inputs normalised per chunk (or device)
    for name in ("0.1.running_mean", "0.1.running_var"):
        np.testing.assert_allclose(pooled[name], whole[name], rtol=1e-4, atol=1e-6)
        assert pooled[name].dtype == np.float32


def test_global_batch_statistics_reject_unknown_arrays():
    with pytest.raises(ValueError, match="unknown arrays"):
        global_batch_statistics([{"bn.running_mean": np.zeros(2)}], np.ones(1), {})


def test_statistics_rules_global_batch_or_pytorch_momentum():
    model = {
        "bn.running_mean": np.array([1.0, 2.0], np.float32),
        "bn.num_batches_tracked": np.array(4),
    }
    batch = {
        "bn.running_mean": np.array([3.0, 0.0], np.float32),
        "bn.num_batches_tracked": np.array(5),
    }
    assert updated_statistics(model, batch, "global-batch") == batch
    moved = updated_statistics(model, batch, "momentum", momentum=0.25)
    np.testing.assert_allclose(moved["bn.running_mean"], [1.5, 1.5])
    assert moved["bn.running_mean"].dtype == np.float32
    assert int(moved["bn.num_batches_tracked"]) == 5
    with pytest.raises(ValueError, match="bn-statistics"):
        updated_statistics(model, batch, "ema")
