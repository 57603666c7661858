"""Zero-copy arrays: views equal to `Array.numpy()` (or a clean error); `.npy` written once."""

import io

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from task.arrays import PACKED, array_record, array_view, npy_array, packed_array, record_views

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


NAMES = st.text(st.characters(max_codepoint=255), min_size=1, max_size=12)
NAMED_ARRAYS = st.dictionaries(NAMES, ARRAYS, max_size=6)


@given(NAMED_ARRAYS)
def test_a_packed_record_is_one_array_that_reads_back_names_order_and_values(arrays):
    record = array_record(arrays)
    assert list(record) == ([PACKED] if arrays else [])
    views = record_views(record)
    assert list(views) == list(arrays)
    for name, value in arrays.items():
        assert views[name].dtype == value.dtype and views[name].shape == value.shape
        np.testing.assert_array_equal(views[name], value)
        assert not views[name].flags.writeable


def test_a_packed_array_is_plain_npy_whose_fields_are_the_arrays_back_to_back():
    arrays = {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(7)}
    array = packed_array(arrays)
    loaded = np.load(io.BytesIO(bytes(array.data)))  # what numpy or Flower's Array.numpy() read
    assert loaded.shape == () and loaded.dtype.names == ("0.weight", "n")
    np.testing.assert_array_equal(loaded["0.weight"], arrays["0.weight"])
    assert loaded["n"] == 7
    assert array.numpy().nbytes == sum(value.nbytes for value in arrays.values())
    assert array.deflate() == Array(loaded).deflate()  # Flower's wire format (deployment)


def test_a_model_of_many_tensors_packs_into_a_long_header():
    arrays = {f"layer{i}.{'x' * 60}.weight": np.full(2, i, np.float32) for i in range(1500)}
    views = record_views(array_record(arrays))
    assert len(views) == 1500 and views["layer1499." + "x" * 60 + ".weight"][0] == 1499


def test_records_of_one_array_per_tensor_read_as_flower_builds_them():
    arrays = {"b": np.ones(3), "a": np.arange(4, dtype=np.int8).reshape(2, 2)}
    views = record_views(ArrayRecord({k: Array(v) for k, v in arrays.items()}))
    assert list(views) == ["b", "a"]
    assert all(np.array_equal(views[k], arrays[k]) for k in arrays)


NESTED = np.dtype([("inner", [("x", "<f4")])])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros(2, [("w", "<f4", (3,))]), "one value"),
        (np.zeros((), [("w", NESTED)]), "plain fields"),
    ],
)
def test_a_structured_array_that_is_not_one_value_of_plain_fields_is_refused(value, message):
    with pytest.raises(ValueError, match=message):
        array_view(Array(value))


def test_a_tensor_given_twice_is_refused():
    record = ArrayRecord({"w": Array(np.zeros(2))})
    record[PACKED] = packed_array({"w": np.ones(2)})
    with pytest.raises(ValueError, match="'w' is given twice"):
        record_views(record)


def test_only_plain_arrays_with_latin_1_names_are_packed():
    with pytest.raises(ValueError, match="plain"):
        packed_array({"w": np.array([1, None])})
    with pytest.raises(ValueError, match="'wĀ' is not Latin-1"):
        packed_array({"wĀ": np.zeros(2)})


def test_npy_array_refuses_python_objects():
    with pytest.raises(ValueError, match="object"):
        npy_array(np.array([1, None]))
