"""The encoded form of a gradient or model update below 32 bits, and its size s (Sec. III-B).

A tensor of n elements quantized to b < 32 bits (:mod:`task.quantize`) travels as its n
b-bit levels packed into ``ceil(n b / 8)`` bytes plus its per-tensor float32 values (one
scale at b = 1, low and step otherwise). At b = 32 it travels as plain float32. The size
s of Eqs. (10)-(11) is what is sent: :func:`encoded_bits` of the model's tensor shapes,
equal to :attr:`EncodedTensor.num_bits` summed over the payload.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from task.quantize import FULL_PRECISION_BITS, dequantize, float_count, quantize_levels

# Bits of one per-tensor float (float32).
FLOAT_BITS = 32
# Columns of a level in its big-endian bit expansion (uint32).
_LEVEL_WIDTH = 32


def tensor_bits(size: int, bits: int) -> int:
    """Return the encoded bits of a tensor of ``size`` elements at ``bits`` per element.

    ``32 n`` at full precision, else ``8 ceil(n b / 8) + 32 f`` with f per-tensor floats.
    """
    if bits >= FULL_PRECISION_BITS:
        return FULL_PRECISION_BITS * size
    return 8 * math.ceil(size * bits / 8) + FLOAT_BITS * float_count(bits)


def encoded_bits(shapes: Iterable[tuple[int, ...]], bits: int) -> int:
    """Return the size s in bits of a gradient (or model update) whose tensors have ``shapes``.

    The s of Eqs. (10)-(11): with ``bits = 32`` it is the paper's ``b p``; below, the packed
    levels and the per-tensor floats of every tensor (:func:`tensor_bits`).
    """
    return sum(tensor_bits(math.prod(shape), bits) for shape in shapes)


@dataclass(frozen=True)
class EncodedTensor:
    """One tensor quantized to ``bits`` < 32 bits, as it is sent.

    Attributes
    ----------
    bits
        Bits b per element.
    shape
        The tensor's shape.
    packed
        uint8 array of the levels, b bits each, big-endian, zero-padded to whole bytes.
    floats
        float32 array decoding the levels: ``[s]`` at b = 1, ``[low, step]`` otherwise.
    """

    bits: int
    shape: tuple[int, ...]
    packed: np.ndarray
    floats: np.ndarray

    @property
    def num_bits(self) -> int:
        """Return the bits sent: the packed bytes and the floats."""
        return 8 * self.packed.size + FLOAT_BITS * self.floats.size

    def check(self) -> None:
        """Check that the parts fit the shape and bits, and the floats are finite.

        Raises
        ------
        ValueError
            Saying which part does not.
        """
        if not 1 <= self.bits < FULL_PRECISION_BITS:
            raise ValueError(f"bits {self.bits} not in [1, {FULL_PRECISION_BITS})")
        expected = math.ceil(math.prod(self.shape) * self.bits / 8)
        if self.packed.dtype != np.uint8 or self.packed.shape != (expected,):
            raise ValueError(f"packed levels are {self.packed.dtype}{self.packed.shape}")
        if self.floats.dtype != np.float32 or self.floats.shape != (float_count(self.bits),):
            raise ValueError(f"floats are {self.floats.dtype}{self.floats.shape}")
        if not np.all(np.isfinite(self.floats)):
            raise ValueError(f"floats are not finite: {self.floats.tolist()}")


def pack_levels(levels: np.ndarray, bits: int) -> np.ndarray:
    """Return uint32 ``levels`` as ``bits`` bits each, big-endian, packed into bytes."""
    columns = np.unpackbits(levels.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1)
    return np.packbits(columns[:, _LEVEL_WIDTH - bits :])


def unpack_levels(packed: np.ndarray, bits: int, size: int) -> np.ndarray:
    """Return the ``size`` uint32 levels of ``bits`` bits each in ``packed``."""
    columns = np.zeros((size, _LEVEL_WIDTH), np.uint8)
    columns[:, _LEVEL_WIDTH - bits :] = np.unpackbits(packed, count=size * bits).reshape(size, bits)
    return np.packbits(columns, axis=1).view(">u4").ravel().astype(np.uint32)


def encode(array: np.ndarray, bits: int, rng: np.random.Generator) -> EncodedTensor:
    """Quantize ``array`` stochastically (:func:`task.quantize.quantize_levels`) and pack it."""
    levels, floats = quantize_levels(array, bits, rng)
    return EncodedTensor(bits, tuple(array.shape), pack_levels(levels, bits), floats)


def decode(encoded: EncodedTensor) -> np.ndarray:
    """Return the float32 tensor that ``encoded`` stands for (unbiased for the original)."""
    size = math.prod(encoded.shape)
    levels = unpack_levels(encoded.packed, encoded.bits, size)
    return dequantize(levels, encoded.floats, encoded.bits).reshape(encoded.shape)


def transmitted(array: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Return what the receiver gets of ``array`` sent with ``bits``: itself at 32 bits."""
    return array if bits >= FULL_PRECISION_BITS else decode(encode(array, bits, rng))


def encode_arrays(
    arrays: Mapping[str, np.ndarray], bits: int, rng: np.random.Generator
) -> dict[str, EncodedTensor]:
    """Encode each array in order, drawing from one ``rng`` (seeded per device and round)."""
    return {name: encode(array, bits, rng) for name, array in arrays.items()}
