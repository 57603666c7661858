"""Wireless channel model of Sec. II-C and Table I: path loss, average and instantaneous rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy
from numpy.typing import ArrayLike

_LN2 = np.log(2.0)
# Above this inverse SNR, exp(z) overflows while exp1(z) underflows; use the asymptotic series.
_ASYMPTOTIC_FROM = 50.0


@dataclass(frozen=True)
class ChannelParams:
    """System parameters of the paper's Table I.

    Attributes
    ----------
    bandwidth_hz
        System bandwidth W.
    noise_dbm_per_hz
        Noise power spectral density N0; the noise power is N0 * W.
    tx_power_dbm
        Transmit power P of the devices (uplink) and of the base station (downlink).
    cell_radius_m
        Radius of the cell; devices lie uniformly in the disc.
    """

    bandwidth_hz: float = 10e6
    noise_dbm_per_hz: float = -174.0
    tx_power_dbm: float = 28.0
    cell_radius_m: float = 200.0

    @property
    def noise_w(self) -> float:
        """Noise power N0 * W in watts."""
        return float(10 ** ((self.noise_dbm_per_hz - 30.0) / 10.0) * self.bandwidth_hz)

    @property
    def tx_power_w(self) -> float:
        """Transmit power in watts."""
        return float(10 ** ((self.tx_power_dbm - 30.0) / 10.0))


def path_loss_db(distance_m: ArrayLike) -> np.ndarray:
    """Path loss PL[dB] = 128.1 + 37.6 log10(d[km]) (Sec. VI-A, Table I)."""
    return 128.1 + 37.6 * np.log10(np.asarray(distance_m, dtype=float) / 1000.0)


def path_gain(distance_m: ArrayLike) -> np.ndarray:
    """Linear large-scale channel gain at ``distance_m`` metres from the base station."""
    return 10.0 ** (-path_loss_db(distance_m) / 10.0)


def mean_snr(gain: ArrayLike, params: ChannelParams = ChannelParams()) -> np.ndarray:
    """Average received SNR P * g / (N0 * W) for a large-scale gain ``gain``."""
    return params.tx_power_w * np.asarray(gain, dtype=float) / params.noise_w


def _scaled_exp1(z: np.ndarray) -> np.ndarray:
    """Return exp(z) * E1(z) without overflow."""
    small = z < _ASYMPTOTIC_FROM
    zs = np.where(small, z, 1.0)
    direct = np.exp(zs) * scipy.special.exp1(zs)
    zl = np.where(small, _ASYMPTOTIC_FROM, z)
    # exp(z) E1(z) ~ (1/z) sum_n (-1)^n n! / z^n, accurate to ~1e-10 for z >= 50 with 6 terms.
    series = sum((-1) ** n * float(np.prod(np.arange(1, n + 1))) / zl**n for n in range(6)) / zl
    return np.where(small, direct, series)


def average_rate_bps(gain: ArrayLike, params: ChannelParams = ChannelParams()) -> np.ndarray:
    """Average rate over Rayleigh fading, Eq. (5)/(6), in closed form.

    With |h|^2 ~ Exp(1) and mean SNR g, E[ln(1 + g|h|^2)] = exp(1/g) E1(1/g), so
    R = W / ln 2 * exp(1/g) * E1(1/g).
    """
    snr = mean_snr(gain, params)
    return params.bandwidth_hz / _LN2 * _scaled_exp1(1.0 / snr)


def instantaneous_rate_bps(
    gain: ArrayLike, fading_power: ArrayLike, params: ChannelParams = ChannelParams()
) -> np.ndarray:
    """Rate W log2(1 + P g |h|^2 / (N0 W)) for one fading sample ``fading_power`` = |h|^2."""
    snr = mean_snr(gain, params) * np.asarray(fading_power, dtype=float)
    return params.bandwidth_hz * np.log2(1.0 + snr)
