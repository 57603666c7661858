"""The optimal policy against independent solvers, closed forms and the paper's structure."""

from __future__ import annotations

import numpy as np
import pytest
from support.scheduler_cases import fractional_gpu_instance, small_instance
from support.scheduler_reference import exhaustive_integer_efficiency, generic_relaxed_efficiency

from scheduler import Instance, get_policy, solve_relaxed
from scheduler.latency import compute_s, uplink_airtime_s


def cpu_instance(rates, cpu_hz, *, cycles=2e6, update=1e5, bits=1.2e6, max_batch=128):
    """CPU instance with given per-device uplink rates and clocks (downlink = uplink)."""
    rates = np.asarray(rates, dtype=float)
    k = len(rates)
    return Instance(
        scenario="cpu",
        gradient_bits=bits,
        devices={
            "uplink_rate_bps": rates,
            "downlink_rate_bps": rates.copy(),
            "cpu_hz": np.broadcast_to(np.asarray(cpu_hz, dtype=float), (k,)).copy(),
            "cycles_per_sample": np.full(k, cycles),
            "update_cycles": np.full(k, update),
        },
        max_batch=max_batch,
    )


def assert_relaxed_matches_generic_solver(instance):
    ours = solve_relaxed(instance).efficiency
    reference = generic_relaxed_efficiency(instance, starts=4)
    # The generic solver can only find feasible points: it never beats the optimum ...
    assert reference <= ours * (1 + 1e-9)
    # ... and from several starts it reaches it.
    assert reference == pytest.approx(ours, rel=1e-6)


@pytest.mark.parametrize("seed", range(16))
def test_relaxed_optimum_matches_generic_solver(seed):
    assert_relaxed_matches_generic_solver(small_instance(seed))


def assert_within_enumeration(instance):
    """Our integer answer is within 0.1% of the best by enumeration, which the relaxed bounds."""
    allocation = get_policy("optimal").allocate(instance)
    best = exhaustive_integer_efficiency(instance)
    assert allocation.efficiency >= best * (1 - 1e-3)
    assert allocation.efficiency <= best * (1 + 1e-12)
    assert best <= allocation.relaxed_efficiency * (1 + 1e-12)


@pytest.mark.parametrize("seed", range(24))
def test_integer_answer_matches_enumeration(seed):
    max_batch = int(np.random.default_rng(seed).integers(1, 13))
    assert_within_enumeration(small_instance(seed, max_devices=3, max_batch=max_batch))


@pytest.mark.parametrize("seed", range(24))
def test_fractional_threshold_integer_answer_matches_enumeration(seed):
    """A GPU device may sit at floor(B_th), the top of its flat region (Eq. 27).

    Lemma 2 restricts the relaxed optimum to B >= B_th; it still bounds floor(B_th) too.
    """
    assert_within_enumeration(fractional_gpu_instance(seed))


@pytest.mark.parametrize("seed", range(6))
def test_fractional_threshold_relaxed_optimum_matches_generic_solver(seed):
    assert_relaxed_matches_generic_solver(fractional_gpu_instance(seed))


def test_fractional_threshold_device_stays_in_flat_region():
    """B_th = 37.5 on the critical path: 37 samples cost t_l, 38 cost t_l + c / 2 (Eq. 27)."""
    rates = np.array([1e8, 5e7])
    instance = Instance(
        scenario="gpu",
        gradient_bits=1e6,
        devices={
            "uplink_rate_bps": rates,
            "downlink_rate_bps": rates.copy(),
            "latency_floor_s": np.array([0.05, 0.005]),
            "latency_slope_s": np.array([4e-3, 2e-4]),
            "batch_threshold": np.array([37.5, 8.0]),
            "update_s": np.zeros(2),
        },
        max_batch=48,
    )
    allocation = get_policy("optimal").allocate(instance)
    assert allocation.batch_sizes.tolist() == [37, 48]
    best = exhaustive_integer_efficiency(instance)
    assert allocation.efficiency == pytest.approx(best, rel=1e-12)
    assert allocation.gap == pytest.approx(1 - 95.985714 / 96.267611, abs=1e-6)


def test_single_device_closed_form():
    # One device holds both frames: T = aB + d + e + u, so sqrt(B)/T peaks at B = (d+e+u)/a.
    inst = cpu_instance([5e7], [1e9], cycles=1e6, update=2e6, bits=2e6)
    a, c = 1e6 / 1e9, 2e6 / 5e7 * 2 + 2e6 / 1e9
    relaxed = solve_relaxed(inst)
    assert relaxed.batches[0] == pytest.approx(c / a, rel=1e-9)
    assert relaxed.efficiency == pytest.approx(np.sqrt(c / a) / (2 * c), rel=1e-9)
    best = max((np.floor(c / a), np.ceil(c / a)), key=lambda b: np.sqrt(b) / (a * b + c))
    assert get_policy("optimal").allocate(inst).batch_sizes[0] == best


@pytest.mark.parametrize("k", [2, 5, 12])
def test_identical_devices_closed_form(k):
    # Symmetric optimum: x = 1/K, b = (K d + K e + u) / a per device, capped at max_batch.
    inst = cpu_instance([8e7] * k, [1.4e9], cycles=3e6, update=1e6, bits=1e6)
    a, d, u = 3e6 / 1.4e9, 1e6 / 8e7, 1e6 / 1.4e9
    b = min((2 * k * d + u) / a, 128)
    relaxed = solve_relaxed(inst)
    np.testing.assert_allclose(relaxed.batches, b, rtol=1e-9)
    np.testing.assert_allclose(relaxed.uplink_fractions, 1 / k, rtol=1e-9)
    expected = np.sqrt(k * b) / (a * b + 2 * k * d + u)
    assert relaxed.efficiency == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", range(0, 20, 2))
def test_uploads_end_together_and_slots_fill_frames(seed):
    """Remark 3: every device finishes its upload at the same instant; (17b)-(17c) are active."""
    instance = small_instance(seed)
    relaxed = solve_relaxed(instance)
    finish = (
        compute_s(instance, relaxed.batches) + uplink_airtime_s(instance) / relaxed.uplink_fractions
    )
    np.testing.assert_allclose(finish, relaxed.uplink_latency_s, rtol=1e-9)
    assert relaxed.uplink_fractions.sum() == pytest.approx(1.0, rel=1e-9)
    allocation = get_policy("optimal").allocate(instance)
    assert allocation.uplink_slots_s.sum() == pytest.approx(instance.uplink_frame_s, rel=1e-9)
    assert allocation.downlink_slots_s.sum() == pytest.approx(instance.downlink_frame_s, rel=1e-9)


def test_batch_grows_with_training_speed_and_uplink_rate():
    """Remark 2: B_k^* increases with V_k = f_k / C and with R_k^U."""
    by_speed = solve_relaxed(
        cpu_instance([8e7] * 4, [0.7e9, 1.4e9, 2.1e9, 2.8e9], bits=3e5)
    ).batches
    assert np.all(np.diff(by_speed) > 0)
    by_rate = solve_relaxed(cpu_instance([2e7, 4e7, 8e7, 1.6e8], [1.4e9], bits=3e5)).batches
    assert np.all(np.diff(by_rate) > 0)
    assert np.all((by_speed > 1) & (by_speed < 128))


@pytest.mark.parametrize("seed", range(1, 30, 2))
def test_gpu_batches_in_compute_bound_region(seed):
    """Lemma 2: B_k^* >= B_k^th in the GPU scenario."""
    instance = small_instance(seed)
    threshold = np.minimum(instance.devices["batch_threshold"], instance.max_batch)
    assert np.all(solve_relaxed(instance).batches >= threshold - 1e-9)
    # Integer batches may also sit at floor(B_th), the top of the flat region.
    batches = get_policy("optimal").allocate(instance).batch_sizes
    assert np.all(batches >= np.floor(threshold + 1e-9))


def test_bounds_bind_at_both_ends():
    # Huge gradients: communication dominates, every device takes the largest batch.
    slow_link = solve_relaxed(cpu_instance([1e6] * 3, [1.4e9], bits=1e9))
    np.testing.assert_allclose(slow_link.batches, 128)
    # Tiny gradients and slow CPUs: computation dominates, batches fall to the minimum.
    slow_cpu = solve_relaxed(cpu_instance([1e8] * 3, [1e6], cycles=1e9, update=0, bits=1))
    np.testing.assert_allclose(slow_cpu.batches, 1)
