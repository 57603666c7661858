"""BatchNorm statistics of a batch, and how batches pool.

Batch normalisation in train mode normalises each channel with the mean and the biased
variance of the batch. A gradient scheme takes one global step per round on the global
batch B (Eq. 1), so the statistics that belong to the step are the global batch's, under
the weights the devices received: each device measures its batch's
(:class:`task.batch_statistics.BatchStatistics`) and the server pools them (:func:`pooled`)
with the weights |B_k| / B of Eq. (1). This module needs no torch, so the server's checks and
averages import without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MEAN, VARIANCE, COUNT = "running_mean", "running_var", "num_batches_tracked"


# A mean of stacked values (one row per batch) under the batches' weights.
Centre = Callable[[np.ndarray, np.ndarray], np.ndarray]


def weighted_sum(stacked: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return sum_i w_i x_i over the rows x_i of ``stacked`` (weights summing to 1: the mean)."""
    shape = (-1,) + (1,) * (stacked.ndim - 1)
    return np.sum(weights.reshape(shape) * stacked, axis=0)


def pooled(
    means: Sequence[np.ndarray],
    variances: Sequence[np.ndarray],
    weights: Sequence[float],
    centre: Centre = weighted_sum,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and biased variance of a union of batches, from each batch's.

    The law of total variance: with batch weights w_i (their shares of the examples),
    mean = sum_i w_i m_i and var = sum_i w_i (v_i + (m_i - mean)^2). Another ``centre``
    (a robust mean, :meth:`strategy.aggregation.Aggregator.statistics`) takes the place of
    both weighted sums. Computed in float64, returned in the dtype of ``means[0]``.
    """
    w = np.asarray(weights, dtype=np.float64)
    m = np.stack([np.asarray(a, np.float64) for a in means])
    v = np.stack([np.asarray(a, np.float64) for a in variances])
    mean = centre(m, w)
    variance = centre(v + (m - mean) ** 2, w)
    dtype = np.asarray(means[0]).dtype
    return mean.astype(dtype), variance.astype(dtype)
