"""BatchNorm statistics of a batch: what a device measures, and how batches pool.

Batch normalisation in train mode normalises each channel with the mean and the biased
variance of the batch. A gradient scheme takes one global step per round on the global
batch B (Eq. 1), so the statistics that belong to the step are the global batch's, under
the weights the devices received: each device measures its batch's (:class:`BatchStatistics`)
and the server pools them (:func:`pooled`) with the weights |B_k| / B of Eq. (1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from torch import Tensor, nn

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


def _batch_norms(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    }


class BatchStatistics:
    """The per-channel mean and biased variance each BatchNorm layer saw in a batch.

    Forward pre-hooks on the model's BatchNorm layers record what each forward pass (one
    chunk of the batch) normalised with; :meth:`buffers` pools the chunks by their sizes.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = _batch_norms(model)
        self.chunks: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {
            name: [] for name in self.layers
        }

    @contextmanager
    def recording(self) -> Iterator[BatchStatistics]:
        """Record the statistics of every forward pass inside the ``with`` block."""
        handles = [
            module.register_forward_pre_hook(self._hook(name))
            for name, module in self.layers.items()
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            x = inputs[0].detach()
            dims = [0, *range(2, x.dim())]
            mean = x.mean(dims).cpu().numpy()
            variance = x.var(dims, unbiased=False).cpu().numpy()
            self.chunks[name].append((x.shape[0], mean, variance))

        return record

    def buffers(self) -> dict[str, np.ndarray]:
        """Return the batch's statistics keyed like the ``state_dict``'s BatchNorm buffers.

        ``<layer>.running_mean`` and ``<layer>.running_var`` hold the batch's mean and
        biased variance (the chunks pooled by size, :func:`pooled`);
        ``<layer>.num_batches_tracked`` the layer's own count.
        """
        stats = {}
        for name, chunks in self.chunks.items():
            if not chunks:
                continue
            sizes, means, variances = zip(*chunks, strict=True)
            weights = np.asarray(sizes, dtype=np.float64) / sum(sizes)
            mean, variance = pooled(means, variances, weights)
            stats[f"{name}.{MEAN}"], stats[f"{name}.{VARIANCE}"] = mean, variance
            count = self.layers[name].num_batches_tracked
            stats[f"{name}.{COUNT}"] = count.detach().cpu().numpy().copy()
        return stats
