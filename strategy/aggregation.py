"""Server-side update: batch-weighted averaging (Eq. 1), learning-rate scaling and SGD (Eq. 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

Arrays = Mapping[str, np.ndarray]


def batch_weights(batch_sizes: Sequence[int]) -> np.ndarray:
    """Weights |B_k| / sum_k |B_k| of the local gradients in Eq. (1).

    Raises
    ------
    ValueError
        If there are no batches or a batch size is below 1.
    """
    sizes = np.asarray(batch_sizes, dtype=float)
    if sizes.size == 0 or np.any(sizes < 1):
        raise ValueError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    return sizes / sizes.sum()


def weighted_average(arrays: Sequence[Arrays], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Average named arrays with ``weights``, keeping each array's dtype.

    Used for the global gradient of Eq. (1) and for BatchNorm running statistics. Float
    arrays are summed in their own precision (float32 gradients: half the memory traffic of
    float64, relative error ~1e-7 per term); integer arrays (BatchNorm's
    ``num_batches_tracked``) in float64, then rounded to the nearest integer.

    Raises
    ------
    ValueError
        If the replies do not all hold the same names.
    """
    names = list(arrays[0])
    for other in arrays[1:]:
        if set(other) != set(names):
            raise ValueError(f"array names differ: {sorted(names)} vs {sorted(other)}")
    averaged = {}
    for name in names:
        first = np.asarray(arrays[0][name])
        kind = first.dtype if np.issubdtype(first.dtype, np.floating) else np.float64
        mean, term = np.zeros(first.shape, kind), np.empty(first.shape, kind)
        for array, weight in zip(arrays, np.asarray(weights, kind), strict=True):
            mean += np.multiply(array[name], weight, out=term)  # in kind, not float64
        rounded = np.rint(mean) if np.issubdtype(first.dtype, np.integer) else mean
        averaged[name] = np.asarray(rounded, dtype=first.dtype)
    return averaged


def scaled_learning_rate(
    base_rate: float, global_batch: int, base_batch: int, scaling: str = "sqrt"
) -> float:
    """Learning rate of a step on global batch B.

    ``scaling="sqrt"``: eta = eta0 sqrt(B / B0), the square-root law of Sec. III-A under
    which Eq. (8) is stated; ``"fixed"``: eta = eta0 at every B (the control of the
    loss-decay check, :mod:`cli.compare.decay`).

    Raises
    ------
    ValueError
        For another ``scaling``.
    """
    if scaling == "sqrt":
        return float(base_rate * np.sqrt(global_batch / base_batch))
    if scaling == "fixed":
        return float(base_rate)
    raise ValueError(f"scaling: expected sqrt or fixed, got {scaling!r}")


def sgd_step(params: Arrays, gradient: Arrays, learning_rate: float) -> dict[str, np.ndarray]:
    """One step w <- w - eta g (Eq. 2) on the arrays named in ``gradient``; others unchanged.

    Raises
    ------
    ValueError
        If ``gradient`` names an array that ``params`` lacks.
    """
    unknown = set(gradient) - set(params)
    if unknown:
        raise ValueError(f"gradient for unknown parameters {sorted(unknown)}")
    return {
        name: np.asarray(value - learning_rate * gradient[name], dtype=value.dtype)
        if name in gradient
        else value
        for name, value in params.items()
    }


def averaged_buffers(
    buffers: Sequence[Arrays], weights: np.ndarray, model: Arrays
) -> dict[str, np.ndarray]:
    """Return the devices' BatchNorm statistics averaged with the gradient weights of Eq. (1).

    Raises
    ------
    ValueError
        If a device sent statistics for an array the ``model`` does not have.
    """
    averaged = weighted_average(buffers, weights)
    unknown = set(averaged) - set(model)
    if unknown:
        raise ValueError(f"buffers for unknown arrays {sorted(unknown)}")
    return averaged
