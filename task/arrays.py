"""Flower ``Array`` ``.npy`` bytes with the fewest copies: written once, read in place.

Writing. ``Array(ndarray)`` runs ``np.save`` into a ``BytesIO``, which copies the values
two or three times; :func:`npy_array` writes the same bytes with one copy.

Reading. ``Array.numpy()`` copies each array out of its ``.npy`` bytes (``np.load``). What
is only read (a reply the server checks and averages, a checkpoint, the model a device
loads) does with a read-only view of the bytes: for resnet18 that saves copying 45 MB.

How Ray carries these bytes in the Simulation Engine: :mod:`task.transport`.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.common.constant import SType
from numpy.lib import format as npy

# The .npy header readers by format version (np.save writes 1.0, or 2.0 for huge headers),
# and the bytes of the header length that follows the magic string in each.
_HEADER_READERS = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
_LENGTH_BYTES = {(1, 0): 2, (2, 0): 4}


def _header(data: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Return the shape, Fortran order, dtype and data offset of the ``.npy`` bytes ``data``.

    Only the header is copied out of ``data``, and its parse is cached.
    """
    view = memoryview(data).cast("B")
    version = npy.read_magic(io.BytesIO(view[: npy.MAGIC_LEN].tobytes()))
    if version not in _LENGTH_BYTES:
        raise ValueError(f"unsupported .npy format version {version}")
    start = npy.MAGIC_LEN + _LENGTH_BYTES[version]
    length = int.from_bytes(view[npy.MAGIC_LEN : start], "little")
    return _parsed_header(view[: start + length].tobytes())


@functools.lru_cache(maxsize=4096)
def _parsed_header(head: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse a whole ``.npy`` header, from the magic string to the end of its text.

    Cached: numpy evaluates the text, and a model's arrays repeat their headers every round.
    """
    stream = io.BytesIO(head)
    version = npy.read_magic(stream)
    shape, fortran_order, dtype = _HEADER_READERS[version](stream)
    return shape, fortran_order, dtype, stream.tell()


def array_view(array: Array) -> np.ndarray:
    """Return ``array`` as a read-only view of its ``.npy`` bytes, as ``Array.numpy()`` reads it.

    Raises
    ------
    TypeError
        If ``array`` is not serialised by NumPy.
    ValueError
        If its bytes are not a whole ``.npy`` array of plain (not object) values.
    """
    if array.stype != "numpy.ndarray":
        raise TypeError(f"unsupported serialization type {array.stype!r}")
    shape, fortran_order, dtype, offset = _header(array.data)
    if dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    values = np.frombuffer(array.data, dtype, count=math.prod(shape), offset=offset)
    values.flags.writeable = False  # also over a writable buffer: a view is only read
    return values.reshape(shape, order="F" if fortran_order else "C")


def record_views(record: ArrayRecord) -> dict[str, np.ndarray]:
    """Return :func:`array_view` of each array of ``record``, by name."""
    return {name: array_view(array) for name, array in record.items()}


def all_finite(record: ArrayRecord) -> bool:
    """Whether every value of every array of ``record`` is finite (no NaN or inf)."""
    return all(np.isfinite(view).all() for view in record_views(record).values())


def npy_array(value: np.ndarray) -> Array:
    """Return ``Array(value)``, its ``.npy`` bytes written with one copy of the values.

    The header and the values go straight into one ``bytearray`` (the ``data``), byte for
    byte what ``np.save`` writes.

    Raises
    ------
    ValueError
        If ``value`` holds Python objects (``np.save`` would pickle them).
    """
    if value.dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    fields = npy.header_data_from_array_1_0(value)
    header = io.BytesIO()
    npy.write_array_header_1_0(header, fields)
    offset = header.tell()
    data = bytearray(offset + value.nbytes)
    data[:offset] = header.getbuffer()
    order = "F" if fields["fortran_order"] else "C"
    np.frombuffer(data, value.dtype, offset=offset).reshape(value.shape, order=order)[...] = value
    array = Array(dtype=str(value.dtype), shape=tuple(value.shape), stype=SType.NUMPY, data=b"")
    array.data = data
    return array


def array_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Return an ``ArrayRecord`` of :func:`npy_array` arrays, by name."""
    record = ArrayRecord()
    for name, value in arrays.items():
        record[name] = npy_array(value)
    return record
