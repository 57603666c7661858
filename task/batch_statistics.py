"""What a device measures of its batch for BatchNorm: each layer's mean and biased variance.

The server pools the devices' statistics (:func:`task.batchnorm.pooled`) into the global
batch's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from torch import Tensor, nn

from task.batchnorm import COUNT, MEAN, VARIANCE, pooled


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
