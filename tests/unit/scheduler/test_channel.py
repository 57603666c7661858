"""Channel model: path loss, the closed-form Rayleigh average rate, instantaneous rates."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.channel import (
    ChannelParams,
    average_rate_bps,
    instantaneous_rate_bps,
    mean_snr,
    path_gain,
    path_loss_db,
)


def test_path_loss_formula():
    assert path_loss_db(1000.0) == pytest.approx(128.1)
    assert path_loss_db(100.0) == pytest.approx(128.1 - 37.6)
    assert path_gain(1000.0) == pytest.approx(10 ** (-12.81))


def test_table_one_noise_and_power():
    params = ChannelParams()
    assert params.noise_w == pytest.approx(10 ** (-17.4 - 3) * 10e6)
    assert params.tx_power_w == pytest.approx(10**-0.2)


@pytest.mark.parametrize("distance", [5.0, 50.0, 200.0, 2000.0, 20000.0])
def test_average_rate_matches_monte_carlo(distance):
    gain = path_gain(distance)
    fading = np.random.default_rng(0).exponential(1.0, 400_000)
    sampled = instantaneous_rate_bps(gain, fading)
    standard_error = sampled.std() / np.sqrt(sampled.size)
    assert abs(average_rate_bps(gain) - sampled.mean()) < 5 * standard_error


def test_average_rate_below_rate_of_mean_snr():
    # Jensen: E[log(1 + g|h|^2)] < log(1 + g E|h|^2).
    gain = path_gain(np.array([10.0, 100.0, 200.0]))
    assert np.all(average_rate_bps(gain) < instantaneous_rate_bps(gain, 1.0))


def test_far_devices_use_the_asymptotic_series_smoothly():
    # Around the series switch (inverse SNR = 50) both branches agree.
    params = ChannelParams()
    snr = np.array([1 / 49.999999, 1 / 50.000001])
    gain = snr * params.noise_w / params.tx_power_w
    assert mean_snr(gain, params) == pytest.approx(snr)
    rates = average_rate_bps(gain, params)
    assert rates[0] == pytest.approx(rates[1], rel=1e-6)
    assert np.all(np.isfinite(average_rate_bps(path_gain(1e7))))
