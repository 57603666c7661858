import numpy as np
import pytest
import torch
from torch import nn

from client.profiler.timing import default_batches, default_input_shape, time_model


def test_default_batches_double_with_points_in_between():
    assert default_batches(128) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    assert default_batches(100)[-3:] == [64, 96, 100]
    assert default_batches(1) == [1]
    with pytest.raises(ValueError, match="max_batch"):
        default_batches(0)


def test_default_input_shape_is_digits_for_the_cnn_and_cifar_otherwise():
    assert default_input_shape("cnn") == (1, 8, 8)
    assert default_input_shape("resnet18") == (3, 32, 32)


def test_time_model_times_each_batch_in_order_and_updates_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    before = model[1].weight.detach().clone()
    seen = []
    threads = torch.get_num_threads()

    timings = time_model(
        model,
        (1, 3, 4),
        3,
        [4, 1, 2],
        torch.device("cpu"),
        repeats=3,
        warmup=1,
        threads=1,
        on_batch=seen.append,
    )

    assert seen == [1, 2, 4]
    np.testing.assert_array_equal(timings.batches, [1, 2, 4])
    assert np.all(timings.step_s > 0) and np.all(timings.update_s > 0)
    assert (timings.repeats, timings.warmup, timings.threads) == (3, 1, 1)
    assert torch.get_num_threads() == threads
    assert not torch.equal(model[1].weight, before)  # the SGD step ran


def test_time_model_needs_a_timed_run():
    with pytest.raises(ValueError, match="repeats"):
        time_model(nn.Linear(2, 2), (2,), 2, [1], torch.device("cpu"), repeats=0, warmup=0)
