"""Flower ``Array`` ``.npy`` bytes with the fewest copies: written once, read in place.

Packing. A model, an update or its encoding travels as one ``Array`` (:func:`array_record`):
a ``.npy`` of one structured value with a field per tensor, whose header names the tensors,
their dtypes and shapes. A deployment sends each Flower object of a message (record, array,
chunk) in a request of its own, two per tensor unpacked. Readers take both layouts: a packed
array, or one array per tensor as ``ArrayRecord(model.state_dict())`` builds it.

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
import warnings
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
# numpy refuses headers over 10,000 bytes unless told; a packed model's names can take more.
_MAX_HEADER_BYTES = 1 << 20
# The name of a packed record's one array.
PACKED = "packed"


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
    shape, fortran_order, dtype = _HEADER_READERS[version](stream, _MAX_HEADER_BYTES)
    return shape, fortran_order, dtype, stream.tell()


def array_view(array: Array) -> np.ndarray:
    """Return ``array`` as a read-only view of its ``.npy`` bytes, as ``Array.numpy()`` reads it.

    Raises
    ------
    TypeError
        If ``array`` is not serialised by NumPy.
    ValueError
        If its bytes are not a whole ``.npy`` array of plain (not object) values, or of
        one packed value (:func:`packed_array`).
    """
    if array.stype != "numpy.ndarray":
        raise TypeError(f"unsupported serialization type {array.stype!r}")
    shape, fortran_order, dtype, offset = _header(array.data)
    if dtype.hasobject:
        raise ValueError("object arrays are not accepted")
    if dtype.names is not None and (shape != () or any(_nested(dtype, f) for f in dtype.names)):
        raise ValueError("a structured array must be one value of plain fields")
    values = np.frombuffer(array.data, dtype, count=math.prod(shape), offset=offset)
    values.flags.writeable = False  # also over a writable buffer: a view is only read
    return values.reshape(shape, order="F" if fortran_order else "C")


def _nested(dtype: np.dtype, field: str) -> bool:
    """Whether a field of a structured ``dtype`` is itself structured."""
    return dtype.fields[field][0].base.names is not None


def array_views(name: str, array: Array) -> dict[str, np.ndarray]:
    """Return the tensors ``array`` holds as read-only views, by name.

    A plain array is one tensor, ``name``; a packed one (:func:`packed_array`) holds one
    per field, named by it.

    Raises
    ------
    TypeError, ValueError
        As :func:`array_view`.
    """
    view = array_view(array)
    if view.dtype.names is None:
        return {name: view}
    return {field: view[field] for field in view.dtype.names}


def record_views(record: ArrayRecord) -> dict[str, np.ndarray]:
    """Return the tensors of ``record``, packed or one per array, by name (:func:`array_views`).

    Raises
    ------
    ValueError
        If a name is given twice.
    """
    views: dict[str, np.ndarray] = {}
    for name, array in record.items():
        for tensor, view in array_views(name, array).items():
            if tensor in views:
                raise ValueError(f"tensor {tensor!r} is given twice")
            views[tensor] = view
    return views


def model_state(record: ArrayRecord) -> dict[str, Any]:
    """Return the tensors of ``record`` as CPU tensors over its bytes, without copying.

    The tensors are read-only (whoever writes copies them first), hence torch's warning
    about non-writable arrays is silenced. Imports torch.
    """
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return {name: torch.from_numpy(view) for name, view in record_views(record).items()}


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
    array, values = _empty_array(fields, value.dtype, value.shape)
    values[...] = value
    return array


def packed_array(arrays: Mapping[str, np.ndarray]) -> Array:
    """Return one ``Array`` holding ``arrays``: a single value with a field per name.

    The fields keep the arrays' dtypes and shapes, back to back: the bytes sent are the
    arrays' own, with no padding.

    Raises
    ------
    ValueError
        If a value holds Python objects or is itself structured, or a name is not Latin-1
        (the ``.npy`` header's encoding).
    """
    if any(value.dtype.hasobject or value.dtype.names for value in arrays.values()):
        raise ValueError("only arrays of plain values are packed")
    for name in arrays:
        if not all(ord(char) < 256 for char in name):
            raise ValueError(f"tensor name {name!r} is not Latin-1")
    formats = [(value.dtype.str, value.shape) for value in arrays.values()]
    dtype = np.dtype({"names": list(arrays), "formats": formats})
    fields = {"descr": npy.dtype_to_descr(dtype), "fortran_order": False, "shape": ()}
    array, packed = _empty_array(fields, dtype, ())
    for name, value in arrays.items():
        packed[name] = value
    return array


def _empty_array(
    fields: dict[str, Any], dtype: np.dtype, shape: tuple[int, ...]
) -> tuple[Array, np.ndarray]:
    """Return an ``Array`` of ``.npy`` header ``fields`` and a writable view of its values."""
    header = io.BytesIO()
    if len(repr(fields)) < 65_000:  # version 1.0 takes headers up to 64 KiB
        npy.write_array_header_1_0(header, fields)
    else:
        npy.write_array_header_2_0(header, fields)
    offset = header.tell()
    data = bytearray(offset + dtype.itemsize * math.prod(shape))
    data[:offset] = header.getbuffer()
    order = "F" if fields["fortran_order"] else "C"
    values = np.frombuffer(data, dtype, count=math.prod(shape), offset=offset)
    array = Array(dtype=str(dtype), shape=tuple(shape), stype=SType.NUMPY, data=b"")
    array.data = data
    return array, values.reshape(shape, order=order)


def array_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Return an ``ArrayRecord`` of ``arrays`` packed into one array (:func:`packed_array`).

    No arrays give an empty record.
    """
    record = ArrayRecord()
    if arrays:
        record[PACKED] = packed_array(arrays)
    return record
