import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from task.batch_statistics import BatchStatistics
from task.batchnorm import pooled


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=5), st.integers(0, 2**32 - 1))
def test_pooled_statistics_are_those_of_the_union_of_batches(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(rng.normal(), rng.uniform(0.1, 3), size=(n, 3)) for n in sizes]
    mean, variance = pooled(
        [b.mean(0) for b in batches],
        [b.var(0) for b in batches],
        np.asarray(sizes) / sum(sizes),
    )
    union = np.concatenate(batches)
    np.testing.assert_allclose(mean, union.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(variance, union.var(0), rtol=1e-9, atol=1e-12)


def test_pooled_keeps_the_dtype_of_the_means():
    mean, variance = pooled([np.ones(2, np.float32)], [np.ones(2, np.float32)], [1.0])
    assert mean.dtype == variance.dtype == np.float32


def test_batch_statistics_record_each_layer_only_inside_the_block():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)).train()
    statistics = BatchStatistics(model)
    x = torch.randn(10, 4) * 3 + 1
    with statistics.recording():
        model(x[:6])
        model(x[6:])
    model(torch.zeros(5, 4))  # outside the block: not recorded
    buffers = statistics.buffers()
    np.testing.assert_allclose(buffers["0.running_mean"], x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(buffers["0.running_var"], x.var(0, unbiased=False), rtol=1e-5)
    assert int(buffers["0.num_batches_tracked"]) == 3  # the layer's own count


def test_batch_statistics_skip_layers_without_running_statistics():
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(4, track_running_stats=False)).train()
    statistics = BatchStatistics(model)
    with statistics.recording():
        model(torch.randn(3, 4))
    assert statistics.buffers() == {}


@pytest.mark.parametrize("layer", [torch.nn.BatchNorm2d(3), torch.nn.BatchNorm3d(3)])
def test_batch_statistics_reduce_over_every_axis_but_the_channel(layer):
    x = (
        torch.randn(4, 3, 5, 5)
        if isinstance(layer, torch.nn.BatchNorm2d)
        else torch.randn(2, 3, 2, 3, 3)
    )
    statistics = BatchStatistics(torch.nn.Sequential(layer).train())
    with statistics.recording():
        layer(x)
    dims = [0, *range(2, x.dim())]
    np.testing.assert_allclose(
        statistics.buffers()["0.running_mean"], x.mean(dims), rtol=1e-5, atol=1e-6
    )
