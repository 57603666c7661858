"""Local mini-batch selection B_k[n] (Step 1 of Sec. II-A) that needs only an int of state."""

from __future__ import annotations

import numpy as np

from task.errors import ConfigError
from task.seeding import stream_rng


def epoch_order(num_examples: int, seed: int, partition_id: int, epoch: int) -> np.ndarray:
    """Return the order in which a device visits its examples in local epoch ``epoch``."""
    return stream_rng("task.sampling", seed, partition_id, epoch).permutation(num_examples)


def next_batch(
    num_examples: int, batch_size: int, seed: int, partition_id: int, cursor: int
) -> tuple[np.ndarray, int]:
    """Draw the next local batch without replacement within a local epoch.

    The device walks through the concatenation of its epoch orders; ``cursor`` counts the
    examples consumed so far, so it is the only state to keep between rounds (Flower's
    ``context.state``). A batch may span an epoch boundary, and can then hold an example
    from the end of one epoch again at the start of the next. A ``batch_size`` above
    ``num_examples`` is capped at ``num_examples``.

    Parameters
    ----------
    num_examples
        Size N_k of the local dataset (> 0).
    batch_size
        Requested B_k (>= 1).
    seed, partition_id
        Key of the device's sampling stream; epoch e is ``epoch_order(..., e)``.
    cursor
        Examples consumed before this batch.

    Returns
    -------
    indices
        Positions in the local dataset, ``min(batch_size, num_examples)`` of them.
    cursor
        The cursor after this batch.
    """
    if num_examples < 1:
        raise ValueError(f"partition {partition_id} holds no examples")
    if batch_size < 1:
        raise ConfigError("batch-size", f"must be >= 1, got {batch_size}")
    size = min(batch_size, num_examples)
    first_epoch, offset = divmod(cursor, num_examples)
    last_epoch = (cursor + size - 1) // num_examples
    orders = [
        epoch_order(num_examples, seed, partition_id, epoch)
        for epoch in range(first_epoch, last_epoch + 1)
    ]
    return np.concatenate(orders)[offset : offset + size], cursor + size
