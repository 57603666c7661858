"""Bounded and robust means of the devices' updates (strategy.aggregation.Aggregator)."""

import numpy as np
import pytest

from strategy.aggregation import (
    Aggregator,
    clip_factors,
    trimmed_mean,
    update_norm,
    weighted_average,
    weighted_median,
)
from strategy.validation import aggregate_problem

EQUAL = np.full(4, 0.25)


def updates(*values):
    return [{"w": np.full(4, v, np.float32), "n": np.array(1, np.int64)} for v in values]


def test_clip_factors_scale_only_the_norms_above_the_multiple_of_the_median():
    assert clip_factors([1.0, 2.0, 3.0, 100.0], 4.0).tolist() == [1.0, 1.0, 1.0, 0.1]
    assert clip_factors([0.0, 0.0, 0.0], 4.0).tolist() == [1.0, 1.0, 1.0]


def test_clipped_bounds_an_outlier_and_leaves_honest_updates_as_in_eq_1():
    honest = updates(1.0, 2.0, 3.0)
    assert Aggregator("clipped").combine(honest, EQUAL[:3] * 4 / 3)["w"] == pytest.approx(
        weighted_average(honest, EQUAL[:3] * 4 / 3)["w"], abs=0
    )
    combined = Aggregator("clipped", clip_multiple=4.0).combine(updates(1, 2, 3, 1e30), EQUAL)
    # The outlier's norm is cut to 4 x the median norm, 4 x 5: (1 + 2 + 3 + 10) / 4.
    assert combined["w"] == pytest.approx(np.full(4, 4.0), rel=1e-6)
    assert combined["n"] == 1


def test_clipped_with_a_reference_bounds_each_models_change_from_it():
    reference = {"w": np.full(4, 10.0, np.float32), "n": np.array(1, np.int64)}
    models = [{"w": reference["w"] + d, "n": np.array(2, np.int64)} for d in (1, 1, 1, 1e6)]
    assert update_norm(models[0], reference) == pytest.approx(2.0)
    combined = Aggregator("clipped", clip_multiple=2.0).combine(models, EQUAL, reference)
    assert combined["w"] == pytest.approx(np.full(4, 10 + (1 + 1 + 1 + 2) / 4), rel=1e-6)


def test_trimmed_mean_cuts_the_weight_share_at_each_end_of_each_coordinate():
    values = updates(0.0, 1.0, 2.0, 1e30)
    assert trimmed_mean(values, EQUAL, 0.25)["w"] == pytest.approx(np.full(4, 1.5))
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    # 0.25 cut at each end: 0.1 of value 0 and 0.15 of value 1 below, 0.25 of 1e30 above.
    kept = (0.05 * 1 + 0.3 * 2 + 0.15 * 1e30) / 0.5
    assert trimmed_mean(values, weights, 0.25)["w"] == pytest.approx(np.full(4, kept))
    assert trimmed_mean(values, weights, 0.0)["w"] == pytest.approx(
        weighted_average(values, weights)["w"]
    )


def test_weighted_median_is_numpys_with_equal_weights_and_follows_the_weights():
    rng = np.random.default_rng(0)
    arrays = [{"w": rng.normal(size=(3, 5)).astype(np.float32)} for _ in range(4)]
    expected = np.median(np.stack([a["w"] for a in arrays]), axis=0)
    assert weighted_median(arrays, EQUAL)["w"] == pytest.approx(expected, rel=1e-6)
    heavy = weighted_median(updates(0.0, 1.0, 5.0), np.array([0.1, 0.2, 0.7]))
    assert heavy["w"].dtype == np.float32 and heavy["w"] == pytest.approx(np.full(4, 5.0))


def test_the_mean_rule_is_eq_1_and_an_unknown_rule_is_refused():
    values = updates(1.0, 2.0, 3.0, 1e30)
    assert Aggregator("mean").combine(values, EQUAL)["w"][0] == pytest.approx(2.5e29)
    with pytest.raises(ValueError, match="aggregation: expected one of mean, clipped"):
        Aggregator("krum").combine(values, EQUAL)


def test_a_new_model_must_be_finite_with_no_negative_variance():
    model = {"w": np.ones(2, np.float32), "bn.running_var": np.ones(2, np.float32)}
    assert aggregate_problem(model) is None
    assert aggregate_problem({**model, "w": np.array([1.0, np.inf])}) == (
        "'w' holds NaN or inf values"
    )
    negative = {**model, "bn.running_var": np.array([1.0, -1e-3], np.float32)}
    assert aggregate_problem(negative) == "'bn.running_var' holds a negative variance"
