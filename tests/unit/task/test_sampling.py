import numpy as np
import pytest

from task.errors import ConfigError
from task.sampling import epoch_order, next_batch


def _draw(num_examples, batch_sizes, seed=0, pid=0):
    cursor, batches = 0, []
    for size in batch_sizes:
        batch, cursor = next_batch(num_examples, size, seed, pid, cursor)
        batches.append(batch)
    return batches, cursor


def test_one_epoch_visits_every_example_once():
    batches, cursor = _draw(50, [7, 13, 1, 29])
    assert cursor == 50
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(50))


def test_batches_follow_the_epoch_orders_across_boundaries():
    batches, cursor = _draw(20, [8, 8, 8, 8, 8, 8])  # 48 examples: 2.4 epochs
    stream = np.concatenate([epoch_order(20, 0, 0, e) for e in range(3)])
    assert np.array_equal(np.concatenate(batches), stream[:48])
    assert cursor == 48
    assert not np.array_equal(stream[:20], stream[20:40])  # a fresh order each epoch


def test_sampling_is_deterministic_and_keyed_by_seed_and_partition():
    first, _ = _draw(30, [10, 10])
    again, _ = _draw(30, [10, 10])
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], _draw(30, [10], seed=1)[0][0])
    assert not np.array_equal(first[0], _draw(30, [10], pid=1)[0][0])


def test_resuming_from_a_cursor_gives_the_same_batch():
    batches, _ = _draw(30, [10, 10, 10])
    batch, cursor = next_batch(30, 10, 0, 0, cursor=20)
    assert np.array_equal(batch, batches[2]) and cursor == 30


def test_batch_larger_than_the_partition_is_capped():
    batch, cursor = next_batch(12, 128, 0, 0, cursor=0)
    assert np.array_equal(np.sort(batch), np.arange(12)) and cursor == 12


def test_bad_batch_size_names_the_field():
    with pytest.raises(ConfigError, match=r"^batch-size: must be >= 1, got 0$"):
        next_batch(10, 0, 0, 0, 0)
