"""Flower ``Array`` bytes with the fewest copies: written once, read in place, sent out of band.

Writing. ``Array(ndarray)`` runs ``np.save`` into a ``BytesIO``, which copies the values
two or three times; :func:`npy_array` writes the same bytes with one copy.

Reading. ``Array.numpy()`` copies each array out of its ``.npy`` bytes (``np.load``). What
is only read (a reply the server checks and averages, a checkpoint, the model a device
loads) does with a read-only view of the bytes: for resnet18 that saves copying 45 MB.

Sending. The Simulation Engine hands each message to a Ray actor, and each reply back, by
pickling it. ``Array`` keeps its ``.npy`` bytes as one ``bytes`` object, which pickle
copies in band: into the pickle, into Ray's object store and out again. With
:func:`send_arrays_out_of_band`, Ray pickles an ``Array``'s bytes out of band (pickle
protocol 5, ``pickle.PickleBuffer``): they are written once into the shared-memory object
store, and the receiver's ``Array`` reads them there.
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import sys
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
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


def _array_fields(array: Array) -> tuple[str, tuple[int, ...], str, pickle.PickleBuffer]:
    """Ray serializer of an ``Array``: its fields, the bytes as an out-of-band buffer."""
    return array.dtype, array.shape, array.stype, pickle.PickleBuffer(array.data)


def _array_from_fields(fields: tuple[str, tuple[int, ...], str, Any]) -> Array:
    """Ray deserializer: the ``Array`` whose ``data`` is the received buffer, not a copy."""
    dtype, shape, stype, data = fields
    array = Array(dtype=dtype, shape=tuple(shape), stype=stype, data=b"")
    array.data = memoryview(data)
    return array


def send_arrays_out_of_band() -> None:
    """Make Ray pickle every Flower ``Array`` in this process with its bytes out of band.

    Ray's serializer registry is per process and only used by Ray, so this changes neither
    Flower's own message encoding (deployment) nor plain pickling. Arrays received this way
    hold a read-only ``memoryview`` of Ray's object store as ``data``; ``Array.numpy()``
    and :func:`array_view` read it like bytes.
    """
    import ray.util

    ray.util.register_serializer(Array, serializer=_array_fields, deserializer=_array_from_fields)


# A record's (name, Array, data) triples.
_Content = tuple[tuple[str, Array, Any], ...]
# What a record's arrays were when they were last put into Ray's object store, by id(record):
# (its content, the ObjectRef). An entry goes when its record does (weakref.finalize), so an
# id is never that of another record.
_PUT_RECORDS: dict[int, tuple[_Content, Any]] = {}
_PUT_LOCK = threading.Lock()
# Puts run in a thread of their own: a put inside Ray's serialization of a message would
# reset that serialization's thread-local state (the object references it contains).
_PUTTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ray-put")


def _unchanged(put: _Content, now: _Content) -> bool:
    """Whether a record holds the very arrays and bytes it held when put."""
    return len(put) == len(now) and all(
        a == b and x is y and p is q for (a, x, p), (b, y, q) in zip(put, now, strict=True)
    )


def _record_reference(record: ArrayRecord) -> tuple[Any]:
    """Ray serializer of an ``ArrayRecord``: a reference to its arrays in the object store.

    The arrays are put once per record, and again only if the record changes (other
    arrays, or an array's ``data`` replaced): a model sent to K devices is put once.
    """
    import ray

    content = tuple((name, array, array.data) for name, array in record.items())
    with _PUT_LOCK:
        entry = _PUT_RECORDS.get(id(record))
        if entry is None or not _unchanged(entry[0], content):
            reference = _PUTTER.submit(ray.put, dict(record.items())).result()
            if entry is None:
                weakref.finalize(record, _PUT_RECORDS.pop, id(record), None)
            entry = (content, reference)
            _PUT_RECORDS[id(record)] = entry
    return (entry[1],)


def _record_from_reference(fields: tuple[Any]) -> ArrayRecord:
    """Ray deserializer: the ``ArrayRecord`` of the referenced arrays, read in place."""
    import ray

    (reference,) = fields
    record = ArrayRecord()
    for name, array in ray.get(reference).items():
        record[name] = array  # ArrayRecord(dict) rebuilds each Array, refusing memoryview data
    return record


def put_records_once() -> None:
    """Make Ray put each ``ArrayRecord`` this process sends into its object store once.

    For the process that sends one model in many messages (the ServerApp in the
    Simulation Engine): each message then carries a reference to the model, which the
    receiving actor reads in place, instead of a copy of its bytes. Needs
    :func:`send_arrays_out_of_band` too. A record must not change its arrays' bytes in
    place once sent (replacing an array or its ``data`` is seen).
    """
    import ray.util

    ray.util.register_serializer(
        ArrayRecord, serializer=_record_reference, deserializer=_record_from_reference
    )


def in_ray_worker() -> bool:
    """Whether this process is a Ray worker or driver: Ray imported (wholly) and initialised.

    Does not import Ray, so a deployed SuperNode does not pay for it.
    """
    is_initialized = getattr(sys.modules.get("ray"), "is_initialized", None)
    return is_initialized is not None and is_initialized()
