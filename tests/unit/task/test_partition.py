import numpy as np
import pytest

from task.data import load_dataset
from task.errors import ConfigError
from task.partition import partition_indices

DIGIT_LABELS = load_dataset("digits", None).y_train


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_partitions_cover_every_example_once(scheme):
    parts = partition_indices(DIGIT_LABELS, 12, scheme, seed=3, alpha=0.5)
    assert len(parts) == 12 and all(len(p) > 0 for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(DIGIT_LABELS)))


def test_iid_parts_are_equal_sized_shuffled_mixtures():
    parts = partition_indices(DIGIT_LABELS, 12, "iid", seed=3)
    assert {len(p) for p in parts} == {119, 120}
    assert all(len(np.unique(DIGIT_LABELS[p])) == 10 for p in parts)
    assert not np.array_equal(np.sort(parts[0]), np.arange(len(parts[0])))  # not contiguous


def test_shards_give_two_labels_per_device():
    labels = np.repeat(np.arange(10), 100)  # 10 classes x 100: shards of 100 are single-class
    parts = partition_indices(labels, 5, "shards", seed=0)
    assert all(len(p) == 200 for p in parts)
    assert all(1 <= len(np.unique(labels[p])) <= 2 for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1000))


def test_shards_on_digits_are_disjoint_and_label_skewed():
    parts = partition_indices(DIGIT_LABELS, 12, "shards", seed=0)
    merged = np.concatenate(parts)
    assert len(np.unique(merged)) == len(merged)  # disjoint
    assert len(DIGIT_LABELS) - len(merged) < 2 * 12  # only an incomplete trailing shard dropped
    assert np.mean([len(np.unique(DIGIT_LABELS[p])) for p in parts]) <= 3.0


def test_partitions_are_deterministic_per_seed_and_read_only():
    a = partition_indices(DIGIT_LABELS, 6, "dirichlet", seed=1, alpha=0.3)
    b = partition_indices(DIGIT_LABELS.copy(), 6, "dirichlet", seed=1, alpha=0.3)
    c = partition_indices(DIGIT_LABELS, 6, "dirichlet", seed=2, alpha=0.3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert not a[0].flags.writeable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((5, "pathological", 0, 0.5), r"^partition: unknown partition 'pathological'"),
        ((11, "iid", 0, 0.5), r"^num-partitions: 11 partitions .* at least 11 .* got 10$"),
        ((6, "shards", 0, 0.5), r"^num-partitions: 6 partitions .* at least 12 .* got 10$"),
        ((0, "iid", 0, 0.5), r"^num-partitions: must be >= 1, got 0$"),
        ((2, "dirichlet", 0, 0.0), r"^dirichlet-alpha: must be > 0, got 0.0$"),
    ],
)
def test_bad_partition_settings_name_the_field(args, message):
    with pytest.raises(ConfigError, match=message):
        partition_indices(np.arange(10) % 2, *args)
