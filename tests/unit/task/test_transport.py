"""Ray transport: `Array` bytes pickled out of band, each `ArrayRecord` put into the store once;
checked on a local Ray (the Flower simulation with the switch is in tests/e2e/test_zero_copy.py)."""

import gc
import pickle

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, RecordDict

from task.arrays import array_record, array_view, npy_array
from task.transport import _PUT_RECORDS, _record_reference, enable_ray_transport


@pytest.fixture
def ray_out_of_band():
    """Ray's pickler with the out-of-band ``Array`` serializer, removed afterwards."""
    import ray.util
    from ray import cloudpickle

    enable_ray_transport(server=False)
    yield cloudpickle
    ray.util.deregister_serializer(Array)


def test_ray_pickles_array_bytes_out_of_band(ray_out_of_band):
    record = ArrayRecord({"w": Array(np.arange(10_000, dtype=np.float32)), "b": Array(np.ones(3))})
    buffers = []
    stream = ray_out_of_band.dumps(record, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 2
    assert len(stream) < 5_000  # the 40 kB of values are not in the pickle itself
    assert sum(b.raw().nbytes for b in buffers) == sum(len(a.data) for a in record.values())
    received = pickle.loads(stream, buffers=buffers)
    for name, array in record.items():
        got = received[name]
        assert type(got) is Array and isinstance(got.data, memoryview)
        assert (got.dtype, got.shape, got.stype) == (array.dtype, tuple(array.shape), array.stype)
        assert np.shares_memory(array_view(got), np.frombuffer(array.data, np.uint8))
        np.testing.assert_array_equal(got.numpy(), array.numpy())


def test_out_of_band_arrays_keep_flowers_own_encoding(ray_out_of_band):
    array = Array(np.arange(50, dtype=np.int64))
    assert len(pickle.dumps(array, protocol=5)) > len(array.data)  # plain pickle: in band
    buffers = []
    received = pickle.loads(
        ray_out_of_band.dumps(array, protocol=5, buffer_callback=buffers.append), buffers=buffers
    )
    # Flower's wire format (deployment) and plain pickling see an ordinary Array.
    assert received.deflate() == array.deflate()
    assert received.object_id == array.object_id
    in_band = ray_out_of_band.dumps(array, protocol=5)  # no buffer_callback: bytes in band
    np.testing.assert_array_equal(pickle.loads(in_band).numpy(), array.numpy())


@pytest.fixture(scope="module")
def ray_store():
    """A one-CPU local Ray with both serializers of this process registered, shut down after."""
    import ray
    import ray.util

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    enable_ray_transport(server=True)
    yield ray
    ray.util.deregister_serializer(ArrayRecord)
    ray.util.deregister_serializer(Array)
    ray.shutdown()


def test_a_record_sent_many_times_is_put_once_and_read_in_place(ray_store):
    record = array_record({"w": np.arange(100_000, dtype=np.float32), "b": np.ones(3)})
    sent = [ray_store.put(RecordDict({"arrays": record})) for _ in range(3)]
    # One object in the store for the model, whichever message carries it.
    assert len({_record_reference(record)[0] for _ in range(3)}) == 1
    for message in sent:
        received = ray_store.get(message)["arrays"]
        assert type(received) is ArrayRecord and list(received) == list(record)
        for name, array in record.items():
            assert isinstance(received[name].data, memoryview)  # Ray's store, not a copy
            np.testing.assert_array_equal(received[name].numpy(), array.numpy())


def test_a_record_is_put_again_once_it_holds_other_arrays(ray_store):
    record = array_record({"w": np.zeros(10, np.float32)})
    first = _record_reference(record)[0]
    record["w"] = npy_array(np.ones(10, np.float32))
    second = _record_reference(record)[0]
    assert second != first
    np.testing.assert_array_equal(ray_store.get(second)["w"].numpy(), np.ones(10))
    record["w"].data = npy_array(np.full(10, 2, np.float32)).data
    third = _record_reference(record)[0]
    assert third != second
    np.testing.assert_array_equal(ray_store.get(third)["w"].numpy(), np.full(10, 2))
    key = id(record)
    assert key in _PUT_RECORDS
    del record
    gc.collect()
    assert key not in _PUT_RECORDS  # a record's entry goes with it
