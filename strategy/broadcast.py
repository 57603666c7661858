"""The global gradient broadcast of Sec. II-A at gradient-bits: what every device applies."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from task.codec import EncodedTensor, decode, encode_arrays
from task.quantize import FULL_PRECISION_BITS
from task.seeding import stream_rng


def encoded_broadcast(
    gradient: Mapping[str, np.ndarray], bits: int, seed: int, server_round: int
) -> dict[str, EncodedTensor]:
    """Encode the global gradient of Eq. (1) for the broadcast at ``bits`` < 32.

    The rounding is drawn from a stream keyed by ``seed`` and ``server_round`` only, so a
    resumed run broadcasts the same payload. Its bits are the downlink s of Eq. (11).
    """
    return encode_arrays(gradient, bits, stream_rng("strategy.broadcast", seed, server_round))


def broadcast_gradient(
    gradient: Mapping[str, np.ndarray], bits: int, seed: int, server_round: int
) -> Mapping[str, np.ndarray]:
    """Return the global gradient as the devices receive it: itself at 32 bits, else decoded.

    The SGD step of Eq. (2) takes this gradient, as every device would on its copy of w_t.
    The devices here keep no model and are sent w_{t+1} itself, which equals what a device
    rebuilds from w_t and the broadcast.
    """
    if bits >= FULL_PRECISION_BITS:
        return gradient
    encoded = encoded_broadcast(gradient, bits, seed, server_round)
    return {name: decode(tensor) for name, tensor in encoded.items()}
