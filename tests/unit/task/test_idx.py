import gzip
import struct

import numpy as np
import pytest

from task.data import load_dataset
from task.errors import ConfigError
from task.idx import DEBIAN_FASHION_MNIST, SPLIT_FILES, parse_idx
from task.partition import partition_indices


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_split_files(folder, rng, n_train=20, n_test=10, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = SPLIT_FILES[split]
        arrays = {images: rng.integers(0, 256, (n, 28, 28)), labels: np.arange(n) % 10}
        for stem, array in arrays.items():
            data = idx_bytes(array)
            path = folder / (f"{stem}.gz" if gz else stem)
            path.write_bytes(gzip.compress(data) if gz else data)
    return folder


def test_parse_idx_reads_the_header_and_data():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(array)), array)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"\x00\x00\x0d\x01", "unsigned bytes"), (idx_bytes(np.zeros(5))[:-1], "do not fit")],
)
def test_parse_idx_rejects_other_files(data, reason):
    with pytest.raises(ValueError, match=reason):
        parse_idx(data)


@pytest.mark.parametrize(("layout", "gz"), [("flat", True), ("torchvision", False)])
def test_mnist_loads_from_a_flat_or_torchvision_folder(tmp_path, layout, gz):
    rng = np.random.default_rng(0)
    folder = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    write_split_files(folder, rng, gz=gz)
    data = load_dataset("mnist", str(tmp_path))
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 1, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert abs(float(data.x_train.mean())) < 1e-5 and float(data.x_train.std()) == pytest.approx(1)
    np.testing.assert_array_equal(data.y_test, np.arange(10))


def test_missing_or_broken_files_name_the_folder(tmp_path):
    with pytest.raises(ConfigError, match=f"data-dir.*not found in {tmp_path}"):
        load_dataset("fashion-mnist", str(tmp_path))
    with pytest.raises(ConfigError, match="required for dataset 'mnist'"):
        load_dataset("mnist", None)
    write_split_files(tmp_path / "broken", np.random.default_rng(1))
    (tmp_path / "broken" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match=r"t10k-labels-idx1-ubyte\.gz does not read"):
        load_dataset("mnist", str(tmp_path / "broken"))


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist"
)
def test_debian_fashion_mnist_is_the_full_set_at_10000_per_device_for_k6():
    data = load_dataset("fashion-mnist", None)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    parts = partition_indices(data.y_train, 6, "iid", seed=0)
    assert [len(p) for p in parts] == [10000] * 6
