"""The device's examples: the same rows from the dataset and from the on-disk shard."""

import numpy as np
import pytest

import task.data
from client import shard as shard_module
from client.shard import CACHE_ENV, local_shard
from task.config import resolve_run_config
from task.data import load_dataset
from task.partition import device_indices

CONFIG = resolve_run_config({"seed": 3})


@pytest.fixture(autouse=True)
def fresh_cache():
    shard_module._shard.cache_clear()
    yield
    shard_module._shard.cache_clear()


def expected(pid, count=4):
    data = load_dataset("digits", None)
    rows = device_indices(data.y_train, count, CONFIG)[pid]
    return data.x_train[rows], data.y_train[rows]


def test_without_a_cache_dir_the_shard_is_a_view_of_the_dataset(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    shard = local_shard(CONFIG, 1, 4)
    assert shard.x is load_dataset("digits", None).x_train
    x, y = shard.examples(np.arange(len(shard)))
    np.testing.assert_array_equal(x, expected(1)[0])
    np.testing.assert_array_equal(y, expected(1)[1])


def test_a_fresh_process_reads_the_written_shard_without_the_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    written = local_shard(CONFIG, 2, 4)
    assert len(list(tmp_path.glob("shard-*.npz"))) == 1
    shard_module._shard.cache_clear()  # as in the next message's process

    def no_dataset(*args):
        raise AssertionError("the dataset was loaded")

    monkeypatch.setattr(task.data, "load_dataset", no_dataset)
    read = local_shard(CONFIG, 2, 4)
    positions = np.array([5, 0, 17])
    for one, other in zip(read.examples(positions), written.examples(positions), strict=True):
        np.testing.assert_array_equal(one, other)
    np.testing.assert_array_equal(read.examples(positions)[1], expected(2)[1][positions])
    assert not read.x.flags.writeable


def test_each_device_and_config_has_its_own_file(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    local_shard(CONFIG, 0, 4)
    local_shard(CONFIG, 1, 4)
    local_shard(resolve_run_config({"seed": 4}), 0, 4)
    local_shard(CONFIG, 0, 5)
    assert len(list(tmp_path.glob("shard-*.npz"))) == 4
    assert not list(tmp_path.glob("*.part"))


def test_shards_written_ahead_are_every_devices_own_examples(monkeypatch, tmp_path):
    """As a simulation's preflight writes them for the actors."""
    shard_module.write_shards(CONFIG, 4, tmp_path)
    assert len(list(tmp_path.glob("shard-*.npz"))) == 4
    wanted = [expected(pid) for pid in range(4)]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(task.data, "load_dataset", None)  # an actor does not load it
    for pid, (x, y) in enumerate(wanted):
        shard = local_shard(CONFIG, pid, 4)
        for read, own in zip(shard.examples(np.arange(len(shard))), (x, y), strict=True):
            np.testing.assert_array_equal(read, own)
