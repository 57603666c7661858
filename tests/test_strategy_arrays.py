"""Zero-copy views of received arrays: the same values as ``Array.numpy()``, or a clean error."""

import io

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from strategy.arrays import array_view, record_views

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
