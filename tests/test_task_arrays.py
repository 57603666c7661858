"""Zero-copy arrays: views equal to `Array.numpy()` (or a clean error); Ray out-of-band pickles."""

import gc
import io
import pickle

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, RecordDict
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from task.arrays import (
    _PUT_RECORDS,
    _record_reference,
    array_record,
    array_view,
    npy_array,
    put_records_once,
    record_views,
    send_arrays_out_of_band,
)

DTYPES = st.sampled_from(["float32", "float64", "float16", "int64", "int8", "uint8", "bool"])
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))


@given(ARRAYS, st.booleans())
def test_view_equals_what_flower_decodes(value, fortran):
    value = np.asfortranarray(value) if fortran else value
    array = Array(value)
    view = array_view(array)
    expected = array.numpy()
    assert view.dtype == expected.dtype and view.shape == expected.shape
    np.testing.assert_array_equal(view, expected)
    assert not view.flags.writeable


def test_view_shares_the_received_bytes():
    array = Array(np.arange(1000, dtype=np.float32))
    view = array_view(array)
    assert np.shares_memory(view, np.frombuffer(array.data, np.uint8))


def test_record_views_keep_names_and_order():
    arrays = {"b": np.ones(3), "a": np.zeros((2, 2), np.float32)}
    views = record_views(ArrayRecord({k: Array(v) for k, v in arrays.items()}))
    assert list(views) == ["b", "a"]
    assert all(np.array_equal(views[k], arrays[k]) for k in arrays)


def npy_bytes(value, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, value, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "stype", "error", "message"),
    [
        (b"x", "numpy.ndarray", ValueError, "magic"),
        (npy_bytes(np.zeros(10))[:-8], "numpy.ndarray", ValueError, "buffer"),
        (npy_bytes(np.array([1, None]), allow_pickle=True), "numpy.ndarray", ValueError, "object"),
        (npy_bytes(np.zeros(3)), "torch.tensor", TypeError, "torch.tensor"),
    ],
)
def test_bad_bytes_raise(data, stype, error, message):
    array = Array(dtype="float64", shape=(10,), stype=stype, data=data)
    with pytest.raises(error, match=message):
        array_view(array)


@pytest.mark.parametrize("wrap", [memoryview, bytearray])
def test_view_reads_any_buffer_and_is_read_only(wrap):
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    array = Array(value)
    array.data = wrap(array.data)
    view = array_view(array)
    np.testing.assert_array_equal(view, value)
    assert not view.flags.writeable


@pytest.fixture
def ray_out_of_band():
    """Ray's pickler with the out-of-band ``Array`` serializer, removed afterwards."""
    import ray.util
    from ray import cloudpickle

    send_arrays_out_of_band()
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


@given(ARRAYS, st.sampled_from(["C", "F", "strided"]))
def test_npy_array_writes_what_np_save_writes(value, layout):
    if layout == "F":
        value = np.asfortranarray(value)
    elif layout == "strided" and value.ndim:
        value = value[..., ::2]
    array = npy_array(value)
    expected = Array(value)
    assert (array.dtype, array.shape, array.stype) == (
        expected.dtype,
        expected.shape,
        expected.stype,
    )
    assert bytes(array.data) == expected.data
    assert array.deflate() == expected.deflate()  # Flower's wire format (deployment)
    np.testing.assert_array_equal(array.numpy(), value)


def test_array_record_keeps_names_order_and_values():
    arrays = {"b": np.ones(3), "a": np.arange(4, dtype=np.int8).reshape(2, 2)}
    record = array_record(arrays)
    assert list(record) == ["b", "a"]
    assert all(np.array_equal(record[k].numpy(), arrays[k]) for k in arrays)


def test_npy_array_refuses_python_objects():
    with pytest.raises(ValueError, match="object"):
        npy_array(np.array([1, None]))


@pytest.fixture(scope="module")
def ray_store():
    """A one-CPU local Ray with both serializers of this process registered, shut down after."""
    import ray
    import ray.util

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    send_arrays_out_of_band()
    put_records_once()
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
