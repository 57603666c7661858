"""Least-squares fits of the compute-latency models to measured (batch, latency) curves.

GPU: Assumption 1, Eq. (27): ``t(B) = floor`` for ``B <= B_th`` and
``floor + slope * (B - B_th)`` above. For a fixed breakpoint the model is linear in
``(floor, slope)``, solved by non-negative least squares; the breakpoint is scanned over and
between the measured batch sizes and refined with a bounded scalar search. Three nested models
compete by BIC, so a curve with no flat part fits as a line (``B_th`` = smallest batch) and one
with no linear part as a constant (``slope = 0``, ``B_th`` = largest batch).

CPU: Eq. (9), ``t = B C / f``, fitted through the origin as the equation has no intercept: a
fixed per-step overhead is spread over the per-sample time, weighted towards large batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar, nnls

# Relative floor on the residual sum of squares, so BIC stays finite on exact curves.
_SSE_FLOOR = 1e-18


@dataclass(frozen=True)
class GpuFit:
    """Fitted GPU training function of Assumption 1, Eq. (27).

    Attributes
    ----------
    latency_floor_s
        ``t^l``: the latency in the data-bound region ``B <= batch_threshold``.
    latency_slope_s
        ``c``: seconds per extra sample in the compute-bound region (``>= 0``).
    batch_threshold
        ``B^th``, continuous, between the smallest and the largest measured batch.
    rmse_s
        Root-mean-square residual of the fit.
    relative_error
        ``rmse_s`` divided by the mean measured latency.
    """

    latency_floor_s: float
    latency_slope_s: float
    batch_threshold: float
    rmse_s: float
    relative_error: float

    def predict(self, batches: ArrayLike) -> np.ndarray:
        """Latency in seconds at each batch size, Eq. (27)."""
        return _eq27(batches, self.latency_floor_s, self.latency_slope_s, self.batch_threshold)

    def to_dict(self) -> dict[str, float]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class CpuFit:
    """Fitted CPU gradient latency of Eq. (9), ``t = B C / f``.

    Attributes
    ----------
    seconds_per_sample
        Least-squares slope through the origin, ``C / f``.
    cpu_hz
        The clock ``f`` the cycles are counted at.
    cycles_per_sample
        ``C = seconds_per_sample * cpu_hz``.
    rmse_s
        Root-mean-square residual of the fit.
    relative_error
        ``rmse_s`` divided by the mean measured latency.
    """

    seconds_per_sample: float
    cpu_hz: float
    cycles_per_sample: float
    rmse_s: float
    relative_error: float

    def predict(self, batches: ArrayLike) -> np.ndarray:
        """Latency in seconds at each batch size, Eq. (9)."""
        return self.seconds_per_sample * np.asarray(batches, dtype=float)

    def to_dict(self) -> dict[str, float]:
        """JSON-ready fields."""
        return asdict(self)


def fit_gpu(batches: ArrayLike, latencies: ArrayLike) -> GpuFit:
    """Fit Assumption 1, Eq. (27), to a measured latency curve by least squares.

    Parameters
    ----------
    batches
        Batch sizes (positive; repeats allowed).
    latencies
        Measured latency in seconds at each batch size.

    Returns
    -------
    GpuFit
        Of three least-squares candidates, a constant (k = 1 parameter), a line from the
        smallest batch (k = 2) and a floor then a line (k = 3), the one with the lowest
        ``BIC = n ln(SSE / n) + k ln n``. A zero slope puts the threshold at the largest batch.
    """
    x, y = _curve(batches, latencies)
    candidates = [
        (1, x.max(), _solve(x, y, x.max())),  # no linear part
        (2, x.min(), _solve(x, y, x.min())),  # no flat part
        (3, *_best_breakpoint(x, y)),
    ]
    n = x.size
    sse_floor = n * _SSE_FLOOR * float(y.max()) ** 2

    def bic(candidate: tuple[int, float, tuple[float, float, float]]) -> float:
        k, _, (_, _, sse) = candidate
        return n * np.log(max(sse, sse_floor) / n) + k * np.log(n)

    _, threshold, (floor, slope, _) = min(candidates, key=bic)
    if slope == 0.0:
        threshold = float(x.max())
    rmse, relative = _errors(y, _eq27(x, floor, slope, threshold))
    return GpuFit(floor, slope, float(threshold), rmse, relative)


def fit_cpu(batches: ArrayLike, latencies: ArrayLike, cpu_hz: float) -> CpuFit:
    """Fit Eq. (9), ``t = B C / f``, through the origin and count cycles at ``cpu_hz``.

    Parameters
    ----------
    batches
        Batch sizes (positive).
    latencies
        Measured latency in seconds at each batch size.
    cpu_hz
        Clock ``f`` of the measured CPU, in cycles per second.
    """
    if not cpu_hz > 0:
        raise ValueError(f"cpu_hz must be positive, got {cpu_hz}")
    x, y = _curve(batches, latencies)
    (per_sample,), *_ = np.linalg.lstsq(x[:, None], y, rcond=None)
    rmse, relative = _errors(y, per_sample * x)
    return CpuFit(float(per_sample), float(cpu_hz), float(per_sample * cpu_hz), rmse, relative)


def _curve(batches: ArrayLike, latencies: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a measured curve and return it as float arrays."""
    x = np.asarray(batches, dtype=float).ravel()
    y = np.asarray(latencies, dtype=float).ravel()
    if x.size == 0 or x.shape != y.shape:
        raise ValueError(f"need as many latencies as batches (> 0), got {y.size} and {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("batches and latencies must be finite")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("batch sizes and latencies must be positive")
    return x, y


def _eq27(batches: ArrayLike, floor: float, slope: float, threshold: float) -> np.ndarray:
    """Eq. (27): ``floor + slope * max(B - threshold, 0)``."""
    return floor + slope * np.maximum(np.asarray(batches, dtype=float) - threshold, 0.0)


def _solve(x: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Least-squares ``(floor, slope) >= 0`` of Eq. (27) at a fixed breakpoint, with the SSE."""
    design = np.column_stack([np.ones_like(x), _eq27(x, 0.0, 1.0, threshold)])
    (floor, slope), residual_norm = nnls(design, y)
    return float(floor), float(slope), float(residual_norm) ** 2


def _best_breakpoint(x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    """Scan breakpoints at and between the measured batches, then refine around the best."""
    measured = np.unique(x)
    grid = np.unique(np.concatenate([measured, (measured[:-1] + measured[1:]) / 2]))
    sse = [_solve(x, y, b)[2] for b in grid]
    i = int(np.argmin(sse))
    best = float(grid[i])
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    if hi > lo:
        refined = minimize_scalar(lambda b: _solve(x, y, b)[2], bounds=(lo, hi), method="bounded")
        if refined.fun < sse[i]:
            best = float(refined.x)
    return best, _solve(x, y, best)


def _errors(y: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Root-mean-square residual and its ratio to the mean measurement."""
    rmse = float(np.sqrt(np.mean((y - predicted) ** 2)))
    return rmse, rmse / float(np.mean(y))
