import pickle

import numpy as np
import pytest
from torchvision.datasets import CIFAR10

from task.data import dataset_shape, load_dataset
from task.errors import ConfigError
from task.idx import DEBIAN_FASHION_MNIST


def test_digits_loads_offline_with_a_stratified_80_20_split():
    data = load_dataset("digits", None)
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 1, 8)
    train_share = np.bincount(data.y_train) / len(data.y_train)
    test_share = np.bincount(data.y_test) / len(data.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_digits_is_cached_and_read_only():
    data = load_dataset("digits", None)
    assert load_dataset("digits", None) is data
    with pytest.raises(ValueError, match="read-only"):
        data.x_train[0, 0, 0, 0] = 1.0


def test_unknown_dataset_names_the_field():
    with pytest.raises(ConfigError, match=r"^dataset: unknown dataset 'svhn'"):
        load_dataset("svhn", None)


def test_missing_cifar10_is_a_one_line_data_dir_error(tmp_path):
    with pytest.raises(ConfigError, match=rf"^data-dir: CIFAR-10 not found in {tmp_path}$"):
        load_dataset("cifar10", str(tmp_path))
    with pytest.raises(ConfigError, match=r"^data-dir: required"):
        load_dataset("cifar10", "")


def _write_fake_cifar(root, rng):
    folder = root / CIFAR10.base_folder
    folder.mkdir()
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        batch = {"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), "labels": [1] * 20}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [f"class{i}" for i in range(10)]}
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps(meta))


def test_cifar10_is_read_from_data_dir_and_standardised(tmp_path, monkeypatch):
    _write_fake_cifar(tmp_path, np.random.default_rng(0))
    # fake files: skip torchvision's md5 checks
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    data = load_dataset("cifar10", str(tmp_path))
    assert data.x_train.shape == (100, 3, 32, 32) and data.x_test.shape == (20, 3, 32, 32)
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 3, 32)
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(data.x_train.std(axis=(0, 2, 3)), 1.0, atol=1e-4)
    assert data.y_train.dtype == np.int64 and set(data.y_train) == {1}


def test_synthetic_cifar_is_cifar_shaped_and_seeded():
    data = load_dataset("synthetic-cifar")
    assert data.x_train.shape == (5000, 3, 32, 32) and data.x_test.shape == (1000, 3, 32, 32)
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 3, 32)
    assert set(np.unique(data.y_train)) == set(range(10))
    assert abs(float(data.x_train.mean())) < 0.01


@pytest.mark.parametrize("name", ["digits", "synthetic-cifar", "fashion-mnist"])
def test_the_shape_known_before_loading_is_the_loaded_data_s(name):
    if name == "fashion-mnist" and not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data, shape = load_dataset(name), dataset_shape(name)
    side = shape.image_size
    assert data.x_train.shape[1:] == data.x_test.shape[1:] == (shape.in_channels, side, side)
    assert data.y_train.max() < shape.num_classes


def test_the_shape_of_an_unknown_dataset_names_the_field():
    with pytest.raises(ConfigError, match=r"^dataset: unknown dataset 'svhn'"):
        dataset_shape("svhn")
