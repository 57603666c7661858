"""Independent, reproducible random streams keyed by a purpose and integers."""

from __future__ import annotations

import zlib

import numpy as np


def stream_rng(purpose: str, *keys: int) -> np.random.Generator:
    """Return a generator for ``purpose`` and ``keys`` (seed, partition id, round, ...).

    The purpose's CRC-32 leads the entropy, so purposes sharing keys (sampling epoch e,
    fading and quantization in round r) get different streams. Use a fixed number of keys
    per purpose: numpy's ``SeedSequence`` ignores trailing zero words, so ``[p, seed, pid]``
    and ``[p, seed, pid, 0]`` give the same stream.
    """
    return np.random.default_rng([zlib.crc32(purpose.encode()), *keys])
