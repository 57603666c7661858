"""Unbiased stochastic quantizers of a gradient or model update to b bits (Sec. III-B).

A quantizer maps a tensor to integer levels in ``[0, 2**b - 1]`` and the per-tensor floats
that decode them; :mod:`task.codec` packs the levels into bits. Both quantizers are
unbiased, E[q(x)] = x:

- b >= 2, stochastic uniform (QSGD-style): ``2**b`` levels spanning ``[x.min(), x.max()]``,
  each element rounded to a neighbouring level, up with probability its fractional distance;
  the floats are the lowest level and the step.
- b = 1, stochastic binary: each element becomes ``+s`` or ``-s``, ``s = max|x|``, ``+s``
  with probability ``(1 + x / s) / 2``; the float is ``s``.
"""

from __future__ import annotations

import numpy as np

from task.errors import ConfigError

# At or above this many bits a tensor travels as plain float32 (the paper's b = 32).
FULL_PRECISION_BITS = 32


def float_count(bits: int) -> int:
    """Return the float32 values per tensor that decode its levels: ``s``, or low and step."""
    return 1 if bits == 1 else 2


def check_bits(bits: int, field: str = "gradient-bits") -> None:
    """Check that ``bits`` quantizes, i.e. lies in [1, 32).

    Raises
    ------
    ConfigError
        Naming ``field``.
    """
    if not 1 <= bits < FULL_PRECISION_BITS:
        raise ConfigError(field, f"must be between 1 and {FULL_PRECISION_BITS - 1}, got {bits}")


def quantize_levels(
    array: np.ndarray, bits: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Quantize ``array`` to ``bits`` bits per element.

    Parameters
    ----------
    array
        A float tensor.
    bits
        b in [1, 32).
    rng
        Source of the rounding randomness (one uniform draw per element).

    Returns
    -------
    levels, floats
        The flat uint32 levels in ``[0, 2**bits - 1]`` and the float32 values of
        :func:`dequantize` (:func:`float_count` of them).
    """
    check_bits(bits)
    values = np.asarray(array, dtype=np.float64).ravel()
    if bits == 1:
        scale = np.float32(np.abs(values).max()) if values.size else np.float32(0)
        ratio = values / scale if scale > 0 else np.zeros_like(values)
        levels = rng.random(values.size) < (1 + ratio) / 2
        return levels.astype(np.uint32), np.array([scale], np.float32)
    top = 2**bits - 1
    low = np.float32(values.min()) if values.size else np.float32(0)
    high = values.max() if values.size else 0.0
    step = np.float32((high - float(low)) / top)
    while float(low) + top * float(step) < high:  # float32 rounding must not cut the top
        step = np.nextafter(step, np.float32(np.inf))
    if step == 0:
        return np.zeros(values.size, np.uint32), np.array([low, step], np.float32)
    position = (values - float(low)) / float(step)
    level = np.floor(position)
    level += rng.random(values.size) < position - level
    return np.clip(level, 0, top).astype(np.uint32), np.array([low, step], np.float32)


def dequantize(levels: np.ndarray, floats: np.ndarray, bits: int) -> np.ndarray:
    """Return the flat float32 values of ``levels`` (:func:`quantize_levels`'s inverse map).

    ``-s + 2 s l`` for b = 1 (``floats = [s]``), ``low + step l`` otherwise.
    """
    level = levels.astype(np.float64)
    if bits == 1:
        return (float(floats[0]) * (2 * level - 1)).astype(np.float32)
    return (float(floats[0]) + float(floats[1]) * level).astype(np.float32)
