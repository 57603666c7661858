"""Server-side update: batch-weighted averaging (Eq. 1), learning-rate scaling and SGD (Eq. 2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from task.batchnorm import MEAN, VARIANCE, Centre, pooled, weighted_sum
from task.names import AGGREGATIONS

# PyTorch's BatchNorm momentum (its default), of the ``momentum`` rule.
BN_MOMENTUM = 0.1

Arrays = Mapping[str, np.ndarray]
# A robust mean of one coordinate: the devices' values sorted along axis 0, their weights.
Reduce = Callable[[np.ndarray, np.ndarray], np.ndarray]


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
    buffers: Sequence[Arrays], weights: np.ndarray, model: Arrays, reduce: Reduce | None = None
) -> dict[str, np.ndarray]:
    """Return the BatchNorm statistics of the global batch from the devices' batches.

    Each device reports its batch's mean and biased variance per channel under the weights
    it received (:class:`task.batch_statistics.BatchStatistics`, in the places of ``running_mean``
    and ``running_var``); pooled with the weights |B_k| / B of Eq. (1) by the law of total
    variance (:func:`task.batchnorm.pooled`) they are the statistics of the global batch's
    activations as the devices computed them: at the first BatchNorm layer exactly the
    global batch's, at deeper ones those of inputs each device normalised with its own
    batch upstream, as training did. Other buffers (``num_batches_tracked``) are averaged
    with the same weights. With a robust ``reduce`` (:meth:`Aggregator.statistics`) every
    one of these weighted means is that robust mean instead (:func:`combined`).

    Raises
    ------
    ValueError
        If a device sent statistics for an array the ``model`` does not have.
    """
    averaged = combined(buffers, weights, reduce)
    unknown = set(averaged) - set(model)
    if unknown:
        raise ValueError(f"buffers for unknown arrays {sorted(unknown)}")
    centre: Centre = weighted_sum if reduce is None else partial(_sorted_reduce, reduce=reduce)
    for name in averaged:
        layer, _, kind = name.rpartition(".")
        variance = f"{layer}.{VARIANCE}"
        if kind == MEAN and variance in averaged:
            means = [device[name] for device in buffers]
            variances = [device[variance] for device in buffers]
            averaged[name], averaged[variance] = pooled(means, variances, weights, centre)
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


def update_norm(arrays: Arrays, reference: Arrays | None = None) -> float:
    """Return the L2 norm of a device's update over its float arrays.

    The update is ``arrays`` itself (a gradient), or with a ``reference`` model the change
    ``arrays - reference`` (a local model).
    """
    total = 0.0
    for name, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating):
            change = (array if reference is None else array - reference[name]).ravel()
            # Summed in float64 a block at a time: no float64 copy of the whole update.
            total += float(np.einsum("i,i->", change, change, dtype=np.float64))
    return float(np.sqrt(total))


def clip_factors(norms: Sequence[float], multiple: float) -> np.ndarray:
    """Return each update's scale min(1, multiple * median norm / norm).

    Norms within the bound keep scale 1 (all of them when the median is 0).
    """
    norms = np.asarray(norms, dtype=float)
    bound = multiple * float(np.median(norms))
    return np.where(norms > bound, bound / np.maximum(norms, np.finfo(float).tiny), 1.0)


def scaled(arrays: Arrays, factor: float, reference: Arrays | None = None) -> dict[str, np.ndarray]:
    """Return the update scaled by ``factor``: ``arrays`` as they are at 1.

    Float arrays only (integer buffers stay); with ``reference`` the change from it is
    scaled, ``reference + factor (arrays - reference)``.
    """
    if factor == 1.0:
        return dict(arrays)
    out = {}
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating):
            out[name] = array
        elif reference is None:
            out[name] = np.asarray(array * factor, dtype=array.dtype)
        else:
            change = (array - reference[name]) * factor
            out[name] = np.asarray(reference[name] + change, dtype=array.dtype)
    return out


def _sorted_reduce(stacked: np.ndarray, weights: np.ndarray, reduce: Reduce) -> np.ndarray:
    """Combine each coordinate of ``stacked`` (one row per device) with ``reduce``.

    ``reduce`` gets the devices' values of every coordinate sorted along axis 0 and their
    weights in that order.
    """
    flat = stacked.reshape(len(stacked), -1)
    order = np.argsort(flat, axis=0, kind="stable")
    values = np.take_along_axis(flat, order, axis=0)
    return reduce(values, np.asarray(weights, dtype=float)[order]).reshape(stacked.shape[1:])


def clipped(
    arrays: Sequence[Arrays], norms: Sequence[float], multiple: float, reference: Arrays | None
) -> list[dict[str, np.ndarray]]:
    """Return each of ``arrays`` scaled by its clip factor (:func:`clip_factors` of ``norms``).

    With ``reference`` the change from it is scaled (:func:`scaled`).
    """
    factors = clip_factors(norms, multiple)
    return [scaled(a, f, reference) for a, f in zip(arrays, factors, strict=True)]


def clipped_statistics(
    buffers: Sequence[Arrays], weights: np.ndarray, multiple: float
) -> list[dict[str, np.ndarray]]:
    """Move outlying batch statistics towards the round's weighted median of them.

    The centre is the coordinate-wise weighted median (:func:`weighted_median`). A batch
    statistic of B_k examples scatters about it as 1 / sqrt(B_k), so each device's distance
    is measured in its own standard errors, sqrt(w_k) ||s_k - median|| with the weights
    w_k of Eq. (1); a device whose distance exceeds ``multiple`` times the median distance
    is moved along the line to the centre until it does not (:func:`clipped`).
    """
    centre = weighted_median(buffers, weights)
    norms = [update_norm(b, centre) * np.sqrt(w) for b, w in zip(buffers, weights, strict=True)]
    return clipped(buffers, norms, multiple, centre)


def _coordinate_wise(
    arrays: Sequence[Arrays], weights: np.ndarray, reduce: Reduce
) -> dict[str, np.ndarray]:
    """Combine each float coordinate's values, sorted, with ``reduce`` (:func:`_sorted_reduce`).

    Integer arrays take the plain weighted average (:func:`weighted_average`).
    """
    first = arrays[0]
    floats = [n for n in first if np.issubdtype(np.asarray(first[n]).dtype, np.floating)]
    others = [n for n in first if n not in floats]
    out = weighted_average([{n: a[n] for n in others} for a in arrays], weights) if others else {}
    for name in floats:
        stacked = np.stack([np.asarray(a[name], np.float64) for a in arrays])
        out[name] = _sorted_reduce(stacked, weights, reduce).astype(np.asarray(first[name]).dtype)
    return {name: out[name] for name in first}


def combined(
    arrays: Sequence[Arrays], weights: np.ndarray, reduce: Reduce | None
) -> dict[str, np.ndarray]:
    """Return Eq. (1)'s weighted average of ``arrays``, or with ``reduce`` its robust mean."""
    if reduce is None:
        return weighted_average(arrays, weights)
    return _coordinate_wise(arrays, weights, reduce)


def _trimmed(values: np.ndarray, weights: np.ndarray, trim: float) -> np.ndarray:
    """Average the sorted ``values`` over the cumulative weight band [trim, 1 - trim] of the total.

    A weight share below 1e-9 of the total left in the band (rounding) is dropped.
    """
    upper = np.cumsum(weights, axis=0)
    total = upper[-1]
    kept = np.minimum(upper, (1 - trim) * total) - np.maximum(upper - weights, trim * total)
    kept = np.where(kept > 1e-9 * total, kept, 0.0)
    return (kept * values).sum(axis=0) / kept.sum(axis=0)


def _median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return the sorted ``values`` at half the cumulative weight (the mean of two at a tie)."""
    upper = np.cumsum(weights, axis=0)
    half, slack = 0.5 * upper[-1], 1e-9 * upper[-1]
    low = np.argmax(upper >= half - slack, axis=0)[None]
    high = np.argmax(upper > half + slack, axis=0)[None]
    pair = np.take_along_axis(values, low, axis=0) + np.take_along_axis(values, high, axis=0)
    return 0.5 * pair[0]


def trimmed_mean(
    arrays: Sequence[Arrays], weights: np.ndarray, trim: float
) -> dict[str, np.ndarray]:
    """Coordinate-wise weighted trimmed mean: the weight share ``trim`` cut at each end.

    Per coordinate the devices' values are sorted, the lowest and the highest ``trim`` of
    the total weight (|B_k| / B of Eq. (1)) left out, and the rest averaged with their
    weights (a device whose weight straddles a cut counts with the part inside); at
    ``trim = 0`` it is Eq. (1).
    """
    return _coordinate_wise(arrays, weights, partial(_trimmed, trim=trim))


def weighted_median(arrays: Sequence[Arrays], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Coordinate-wise weighted median: the value at half the cumulative weight.

    Where half the weight falls between two values (equal weights, an even number of
    devices) their mean, as :func:`numpy.median` takes.
    """
    return _coordinate_wise(arrays, weights, _median)


@dataclass(frozen=True)
class Aggregator:
    """How the server combines the devices' updates (run-config ``aggregation``).

    Attributes
    ----------
    rule
        ``mean``: Eq. (1); ``clipped``: each update scaled to at most ``clip_multiple``
        times the round's median norm, then Eq. (1); ``trimmed-mean``: the weight share
        ``trim_fraction`` cut at each end per coordinate (:func:`trimmed_mean`);
        ``median``: the weighted median per coordinate (:func:`weighted_median`).
    clip_multiple
        The bound of ``clipped`` in median norms.
    trim_fraction
        The weight share cut at each end by ``trimmed-mean``.
    """

    rule: str = "clipped"
    clip_multiple: float = 4.0
    trim_fraction: float = 0.2

    def combine(
        self, arrays: Sequence[Arrays], weights: np.ndarray, reference: Arrays | None = None
    ) -> dict[str, np.ndarray]:
        """Combine the devices' ``arrays`` with the weights of Eq. (1).

        ``arrays`` are gradients, or with ``reference`` local models whose change from it is
        the update that ``clipped`` bounds.

        Raises
        ------
        ValueError
            For an unknown rule.
        """
        reduce = self._reduce()
        if self.rule == "clipped":
            norms = [update_norm(a, reference) for a in arrays]
            arrays = clipped(arrays, norms, self.clip_multiple, reference)
        return combined(arrays, weights, reduce)

    def statistics(
        self, buffers: Sequence[Arrays], weights: np.ndarray, model: Arrays
    ) -> dict[str, np.ndarray]:
        """Pool the devices' batch BatchNorm statistics as the rule combines updates.

        ``mean``: :func:`global_batch_statistics` (Eq. (1)'s weights, the law of total
        variance); ``clipped``: each device's statistics first bounded
        (:func:`clipped_statistics`); ``trimmed-mean`` and ``median``: that robust mean in
        place of every weighted mean of the pooling, of the devices' means and of their
        variances about the pooled mean. One device's statistics, however large, then move
        the pooled ones about as far as an honest device's scatter does.

        Raises
        ------
        ValueError
            For an unknown rule, or statistics for an array the ``model`` lacks.
        """
        return global_batch_statistics(
            self._bounded(buffers, weights), weights, model, self._reduce()
        )

    def buffers(self, buffers: Sequence[Arrays], weights: np.ndarray) -> dict[str, np.ndarray]:
        """Combine the devices' buffers (a model-based scheme's BatchNorm running statistics).

        As :meth:`combine` combines updates, but the bound of ``clipped`` is that of the
        statistics (:func:`clipped_statistics`): a buffer's scale is not a parameter's, so
        a bound on a model's whole change would let its buffers move far.

        Raises
        ------
        ValueError
            For an unknown rule.
        """
        return combined(self._bounded(buffers, weights), weights, self._reduce())

    def _bounded(self, buffers: Sequence[Arrays], weights: np.ndarray) -> Sequence[Arrays]:
        """Return the devices' statistics, with ``clipped`` bounded (:func:`clipped_statistics`)."""
        if self.rule != "clipped":
            return buffers
        return clipped_statistics(buffers, weights, self.clip_multiple)

    def _reduce(self) -> Reduce | None:
        """Return the rule's robust mean of a coordinate; None for Eq. (1)'s weighted mean.

        Raises
        ------
        ValueError
            For an unknown rule.
        """
        if self.rule in ("mean", "clipped"):
            return None
        if self.rule == "trimmed-mean":
            return partial(_trimmed, trim=self.trim_fraction)
        if self.rule == "median":
            return _median
        raise ValueError(
            f"aggregation: expected one of {', '.join(AGGREGATIONS)}, got {self.rule!r}"
        )
