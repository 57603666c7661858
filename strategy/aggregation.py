"""Server-side update: batch-weighted averaging (Eq. 1), learning-rate scaling and SGD (Eq. 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from task.batchnorm import MEAN, VARIANCE, pooled

# PyTorch's BatchNorm momentum (its default), of the ``momentum`` rule.
BN_MOMENTUM = 0.1

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


def global_batch_statistics(
    buffers: Sequence[Arrays], weights: np.ndarray, model: Arrays
) -> dict[str, np.ndarray]:
    """Return the BatchNorm statistics of the global batch from the devices' batches.

    Each device reports its batch's mean and biased variance per channel under the weights
    it received (:class:`task.batchnorm.BatchStatistics`, in the places of ``running_mean``
    and ``running_var``); pooled with the weights |B_k| / B of Eq. (1) by the law of total
    variance (:func:`task.batchnorm.pooled`) they are the statistics of the global batch's
    activations as the devices computed them: at the first BatchNorm layer exactly the
    global batch's, at deeper ones those of inputs each device normalised with its own
    batch upstream, as training did. Other buffers (``num_batches_tracked``) are averaged
    with the same weights.

    Raises
    ------
    ValueError
        If a device sent statistics for an array the ``model`` does not have.
    """
    averaged = weighted_average(buffers, weights)
    unknown = set(averaged) - set(model)
    if unknown:
        raise ValueError(f"buffers for unknown arrays {sorted(unknown)}")
    for name in averaged:
        layer, _, kind = name.rpartition(".")
        variance = f"{layer}.{VARIANCE}"
        if kind == MEAN and variance in averaged:
            means = [device[name] for device in buffers]
            variances = [device[variance] for device in buffers]
            averaged[name], averaged[variance] = pooled(means, variances, weights)
    return averaged


def updated_statistics(
    model: Arrays, batch: Arrays, rule: str, momentum: float = BN_MOMENTUM
) -> dict[str, np.ndarray]:
    """Return the global model's BatchNorm buffers after a step on the global batch.

    ``rule="global-batch"``: the global batch's statistics (:func:`global_batch_statistics`)
    themselves. A gradient scheme takes one step per round, so an exponential average
    would mix the statistics of some 1 / momentum earlier models, each far from the current
    one early in training; eval mode then normalises as train mode normalised the batch
    that computed the last step, one step behind the weights. ``rule="momentum"``: PyTorch's
    update with the global batch's statistics, (1 - momentum) r + momentum s, once per round.

    Raises
    ------
    ValueError
        For another ``rule``.
    """
    if rule == "global-batch":
        return dict(batch)
    if rule != "momentum":
        raise ValueError(f"bn-statistics: expected global-batch or momentum, got {rule!r}")
    return {
        name: value
        if not np.issubdtype(value.dtype, np.floating)
        else np.asarray((1 - momentum) * model[name] + momentum * value, dtype=value.dtype)
        for name, value in batch.items()
    }
