"""The broadcasts at b bits: the global gradient (Sec. II-A) and the averaged model, as received."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def broadcast_model(
    model: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    parameters: Iterable[str],
    bits: int,
    seed: int,
    server_round: int,
) -> dict[str, np.ndarray]:
    """Return the averaged ``model`` as the devices rebuild it from its download at ``bits``.

    Below 32 bits the server sends the change of the ``parameters`` from ``reference`` (the
    model the devices hold) encoded like the gradient broadcast, its size the downlink s of
    Eq. (11) at model-bits; the other arrays (BatchNorm buffers) travel plain, as in the
    uploads. At 32 bits, ``model`` itself.
    """
    if bits >= FULL_PRECISION_BITS:
        return dict(model)
    change = {name: model[name] - reference[name] for name in parameters}
    received = broadcast_gradient(change, bits, seed, server_round)
    return {**model, **{name: reference[name] + received[name] for name in change}}
