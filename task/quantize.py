"""Unbiased stochastic uniform quantization of a local gradient to b bits (Sec. III-B)."""

from __future__ import annotations

import numpy as np

from task.errors import ConfigError

# At or above this many bits a gradient travels as plain float32 (the paper's b = 32).
FULL_PRECISION_BITS = 32


def stochastic_quantize(array: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Quantize to ``2**bits`` levels spanning ``[array.min(), array.max()]``, then dequantize.

    Each element is rounded to one of its two neighbouring levels, up with probability equal
    to its fractional distance, so ``E[q(x)] = x`` and every ``q(x)`` lies in
    ``[x.min(), x.max()]``. Sending it costs ``bits`` per element plus the two range
    endpoints, the ``s = b * p`` of Eq. (10).

    Parameters
    ----------
    array
        A gradient tensor.
    bits
        b >= 1; ``bits >= 32`` returns ``array`` itself.
    rng
        Source of the rounding randomness.

    Returns
    -------
    np.ndarray
        float32 array of ``array``'s shape.
    """
    if bits < 1:
        raise ConfigError("gradient-bits", f"must be >= 1, got {bits}")
    if bits >= FULL_PRECISION_BITS:
        return array
    values = np.asarray(array, dtype=np.float64)
    if values.size == 0 or (low := values.min()) == (high := values.max()):
        return values.astype(np.float32)
    levels = 2**bits - 1
    step = (high - low) / levels
    position = (values - low) / step
    level = np.floor(position)
    level += rng.random(values.shape) < position - level
    return (low + np.clip(level, 0, levels) * step).astype(np.float32)
