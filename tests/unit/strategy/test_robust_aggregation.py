"""Bounded and robust means of the devices' updates (strategy.aggregation.Aggregator)."""

import numpy as np
import pytest

from strategy.aggregation import (
    Aggregator,
    batch_weights,
    clip_factors,
    clipped_statistics,
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


# --- BatchNorm statistics: one device's, however large, cannot end a run ---

SIX = np.full(6, 1 / 6)


def batch_statistics(seed=0, devices=6):
    """Six devices' batch means (about 1) and variances (about 2) of 8 channels, and a model."""
    rng = np.random.default_rng(seed)
    stats = [
        {
            "bn.running_mean": rng.normal(1.0, 0.1, 8).astype(np.float32),
            "bn.running_var": rng.normal(2.0, 0.1, 8).astype(np.float32),
            "bn.num_batches_tracked": np.array(3, np.int64),
        }
        for _ in range(devices)
    ]
    model = {
        "bn.running_mean": np.full(8, 0.9, np.float32),
        "bn.running_var": np.full(8, 2.2, np.float32),
        "bn.num_batches_tracked": np.array(2, np.int64),
    }
    return stats, model


def huge(statistics, value=3e38):
    """The statistics with batch means of ``value``, the largest float32 order: finite."""
    return {**statistics, "bn.running_mean": np.full(8, value, np.float32)}


def test_one_devices_huge_batch_means_wreck_the_pooled_variance_of_the_mean():
    stats, model = batch_statistics()
    pooled = Aggregator("mean").statistics([*stats[:5], huge(stats[5])], SIX, model)
    assert aggregate_problem(pooled) == "'bn.running_var' holds NaN or inf values"


@pytest.mark.security
@pytest.mark.parametrize("rule", ["clipped", "trimmed-mean", "median"])
def test_one_devices_huge_batch_means_leave_the_pooled_statistics_near_the_honest_pool(rule):
    stats, model = batch_statistics()
    honest = Aggregator("mean").statistics(stats[:5], np.full(5, 0.2), model)
    pooled = Aggregator(rule).statistics([*stats[:5], huge(stats[5])], SIX, model)
    assert aggregate_problem(pooled) is None
    # The honest statistics scatter by 0.1 a channel. Clipped, the attacker's lie within 4
    # median distances of the round's median; the robust means leave them out. Either way
    # the pool stays within that scatter of the honest devices' pool.
    for name in ("bn.running_mean", "bn.running_var"):
        np.testing.assert_allclose(pooled[name], honest[name], atol=0.1)
    assert pooled["bn.num_batches_tracked"] == 3


def test_honest_statistics_pool_alike_under_mean_and_clipped_and_robust_rules_near_them():
    stats, model = batch_statistics(seed=1)
    mean = Aggregator("mean").statistics(stats, SIX, model)
    clipped = Aggregator("clipped").statistics(stats, SIX, model)
    for name, array in mean.items():
        np.testing.assert_array_equal(clipped[name], array)  # the clip does not bind
    for rule in ("trimmed-mean", "median"):
        robust = Aggregator(rule).statistics(stats, SIX, model)
        np.testing.assert_allclose(robust["bn.running_mean"], mean["bn.running_mean"], atol=0.1)
        np.testing.assert_allclose(robust["bn.running_var"], mean["bn.running_var"], atol=0.15)


def test_the_trimmed_mean_of_statistics_at_no_trim_is_the_law_of_total_variance():
    stats, model = batch_statistics(seed=2)
    mean = Aggregator("mean").statistics(stats, SIX, model)
    untrimmed = Aggregator("trimmed-mean", trim_fraction=0.0).statistics(stats, SIX, model)
    for name, array in mean.items():
        np.testing.assert_allclose(untrimmed[name], array, rtol=1e-6)


def means(*values):
    return [{"bn.running_mean": np.full(4, v, np.float32)} for v in values]


def test_a_small_batchs_wider_scatter_is_left_and_the_same_distance_at_a_large_batch_clipped():
    """Distances count in standard errors, sqrt(w_k) ||s_k - median||: a batch statistic of
    B_k examples scatters as 1 / sqrt(B_k)."""
    stats = means(1.0, 1.1, 0.9, 3.0)
    small = clipped_statistics(stats, batch_weights([50, 50, 50, 1]), 4.0)
    np.testing.assert_array_equal(small[3]["bn.running_mean"], stats[3]["bn.running_mean"])
    weights = batch_weights([50, 50, 1, 50])
    large = clipped_statistics(stats, weights, 4.0)
    centre = {"bn.running_mean": np.full(4, 1.1, np.float32)}  # the weighted median
    distances = [update_norm(s, centre) * np.sqrt(w) for s, w in zip(stats, weights, strict=True)]
    moved = update_norm(large[3], centre) * np.sqrt(weights[3])
    assert moved == pytest.approx(4 * np.median(distances), rel=1e-5)
    assert [s["bn.running_mean"][0] for s in large[:3]] == [1.0, 1.1, 0.9]


@pytest.mark.security
def test_a_model_based_schemes_huge_buffers_are_bounded_by_every_robust_rule():
    """Six equal weights, as for the gradients: the trimmed mean cuts one device at each end."""
    models = means(1.0, 1.1, 0.9, 1.0, 1.05, 1e30)
    assert Aggregator("mean").buffers(models, SIX)["bn.running_mean"][0] == pytest.approx(1e30 / 6)
    for rule in ("clipped", "trimmed-mean", "median"):
        combined = Aggregator(rule).buffers(models, SIX)["bn.running_mean"]
        np.testing.assert_allclose(combined, 1.0, atol=0.1)
