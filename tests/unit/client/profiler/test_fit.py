import numpy as np
import pytest

from client.profiler.fit import fit_cpu, fit_gpu
from client.profiler.timing import default_batches

BATCHES = np.array(default_batches(128))


def eq27(batches, floor, slope, threshold):
    return floor + slope * np.maximum(np.asarray(batches, dtype=float) - threshold, 0.0)


def noisy(latency, seed, level=0.02):
    rng = np.random.default_rng(seed)
    return latency * (1 + level * rng.standard_normal(latency.shape))


def relative(value, truth):
    return abs(value / truth - 1)


def test_exact_curve_with_breakpoint_off_the_scanned_grid_is_recovered():
    fit = fit_gpu(BATCHES, eq27(BATCHES, 0.02, 4e-4, 21.0))  # grid: 16, 20, 24

    assert fit.latency_floor_s == pytest.approx(0.02, rel=1e-6)
    assert fit.latency_slope_s == pytest.approx(4e-4, rel=1e-6)
    assert fit.batch_threshold == pytest.approx(21.0, rel=1e-4)
    assert fit.rmse_s < 1e-9
    np.testing.assert_allclose(fit.predict([1, 21, 101]), [0.02, 0.02, 0.02 + 80 * 4e-4])


@pytest.mark.parametrize("truth", [(0.02, 4e-4, 20.0), (0.05, 1e-3, 48.0), (0.01, 2e-4, 12.0)])
@pytest.mark.parametrize("seed", range(4))
def test_noisy_curve_recovers_floor_slope_and_threshold(truth, seed):
    floor, slope, threshold = truth
    measured = noisy(eq27(BATCHES, *truth), seed)

    fit = fit_gpu(BATCHES, measured)

    assert relative(fit.latency_floor_s, floor) < 0.04
    assert relative(fit.latency_slope_s, slope) < 0.15
    assert relative(fit.batch_threshold, threshold) < 0.25
    assert fit.relative_error < 0.04
    assert fit.rmse_s == pytest.approx(np.sqrt(np.mean((measured - fit.predict(BATCHES)) ** 2)))


def test_repeated_measurements_per_batch_are_accepted():
    batches = np.repeat(BATCHES, 3)
    fit = fit_gpu(batches, noisy(eq27(batches, 0.02, 4e-4, 20.0), seed=7))

    assert relative(fit.batch_threshold, 20.0) < 0.2


@pytest.mark.parametrize("seed", [None, 0, 1, 2])
def test_curve_without_flat_part_fits_a_line_from_the_smallest_batch(seed):
    line = 0.01 + 1e-3 * BATCHES
    fit = fit_gpu(BATCHES, line if seed is None else noisy(line, seed))

    assert fit.batch_threshold == BATCHES.min()
    assert relative(fit.latency_slope_s, 1e-3) < 0.05
    assert relative(fit.latency_floor_s, 0.011) < 0.1


def test_exact_constant_curve_has_zero_slope_and_threshold_at_the_largest_batch():
    fit = fit_gpu(BATCHES, np.full(BATCHES.shape, 0.03))

    assert fit.latency_slope_s == 0.0
    assert fit.batch_threshold == BATCHES.max()
    assert fit.latency_floor_s == pytest.approx(0.03)


@pytest.mark.parametrize("seed", range(4))
def test_noisy_constant_curve_stays_flat_within_the_noise(seed):
    fit = fit_gpu(BATCHES, noisy(np.full(BATCHES.shape, 0.03), seed))

    rise = fit.latency_slope_s * (BATCHES.max() - fit.batch_threshold)
    assert rise < 0.1 * 0.03
    assert relative(fit.latency_floor_s, 0.03) < 0.03


def test_a_single_batch_size_fits_a_constant():
    fit = fit_gpu([8, 8, 8], [0.010, 0.012, 0.011])

    assert fit.latency_slope_s == 0.0
    assert fit.batch_threshold == 8
    assert fit.latency_floor_s == pytest.approx(0.011)


def test_cpu_fit_goes_through_the_origin_and_counts_cycles_at_the_clock():
    fit = fit_cpu(BATCHES, 5e-5 * BATCHES, cpu_hz=2e9)

    assert fit.seconds_per_sample == pytest.approx(5e-5)
    assert fit.cycles_per_sample == pytest.approx(1e5)
    assert fit.rmse_s < 1e-12
    np.testing.assert_allclose(fit.predict([10]), [5e-4])


def test_cpu_fit_spreads_an_intercept_over_the_per_sample_time():
    measured = 1e-3 + 5e-5 * BATCHES

    fit = fit_cpu(BATCHES, measured, cpu_hz=1e9)

    expected = np.sum(BATCHES * measured) / np.sum(BATCHES**2)  # least squares through the origin
    assert fit.seconds_per_sample == pytest.approx(expected)
    assert fit.seconds_per_sample > 5e-5
    assert fit.relative_error > 0


@pytest.mark.parametrize(
    ("batches", "latencies"),
    [
        ([], []),
        ([1, 2], [0.1]),
        ([0, 2], [0.1, 0.2]),
        ([1, 2], [0.1, -0.2]),
        ([1, 2], [0.1, np.nan]),
    ],
)
def test_bad_curves_are_rejected(batches, latencies):
    with pytest.raises(ValueError):
        fit_gpu(batches, latencies)
    with pytest.raises(ValueError):
        fit_cpu(batches, latencies, cpu_hz=1e9)


def test_cpu_fit_rejects_a_non_positive_clock():
    with pytest.raises(ValueError, match="cpu_hz"):
        fit_cpu([1, 2], [0.1, 0.2], cpu_hz=0)
