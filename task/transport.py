"""Ray transport of Flower arrays in the Simulation Engine: out of band, and put once.

The Simulation Engine hands each message to a Ray actor, and each reply back, by pickling
it. Two Ray serializers, turned on together for a process by :func:`enable_ray_transport`
(run-config ``ray-zero-copy``), save the copies that this pickling makes.

Out of band (every Ray process). ``Array`` keeps its ``.npy`` bytes as one ``bytes``
object, which pickle copies in band: into the pickle, into Ray's object store and out
again. With the ``Array`` serializer, Ray pickles an ``Array``'s bytes out of band (pickle
protocol 5, ``pickle.PickleBuffer``): they are written once into the shared-memory object
store, and the receiver's ``Array`` reads them there, as a read-only ``memoryview``.

Put once (the ServerApp, which sends one model in many messages). With the ``ArrayRecord``
serializer, Ray puts each record into its object store once, and again only if the record
then holds other arrays; each message carries a reference to it, which the receiving
actor reads in place, instead of a copy of its bytes. A record must not change its arrays'
bytes in place once sent (replacing an array or its ``data`` is seen).

Ray's serializer registry is per process and only used by Ray, so neither changes Flower's
own message encoding (deployment) nor plain pickling.
"""

from __future__ import annotations

import pickle
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flwr.app import Array, ArrayRecord


def _array_fields(array: Array) -> tuple[str, tuple[int, ...], str, pickle.PickleBuffer]:
    """Ray serializer of an ``Array``: its fields, the bytes as an out-of-band buffer."""
    return array.dtype, array.shape, array.stype, pickle.PickleBuffer(array.data)


def _array_from_fields(fields: tuple[str, tuple[int, ...], str, Any]) -> Array:
    """Ray deserializer: the ``Array`` whose ``data`` is the received buffer, not a copy."""
    dtype, shape, stype, data = fields
    array = Array(dtype=dtype, shape=tuple(shape), stype=stype, data=b"")
    array.data = memoryview(data)
    return array


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


def enable_ray_transport(*, server: bool) -> None:
    """Make Ray carry the Flower arrays this process sends without copies.

    Parameters
    ----------
    server
        Whether this process sends one model in many messages (the ServerApp): then each
        ``ArrayRecord`` is also put into the object store once. A Ray actor (a ClientApp)
        only sends its arrays' bytes out of band.
    """
    import ray.util

    ray.util.register_serializer(Array, serializer=_array_fields, deserializer=_array_from_fields)
    if server:
        ray.util.register_serializer(
            ArrayRecord, serializer=_record_reference, deserializer=_record_from_reference
        )


def in_ray_worker() -> bool:
    """Whether this process is a Ray worker or driver: Ray imported (wholly) and initialised.

    Does not import Ray, so a deployed SuperNode does not pay for it.
    """
    is_initialized = getattr(sys.modules.get("ray"), "is_initialized", None)
    return is_initialized is not None and is_initialized()
