"""Fashion-MNIST from IDX files: the real Debian files and broken tiny ones."""

import gzip
import os
import shutil
import sys

import numpy as np
import pytest

from kerazoo import data
from kerazoo.data import fashion_mnist, idx

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
# Sum of all 60000*28*28 train pixels of the upstream files, computed once
# with NumPy (int64). Mean 72.94 = 0.2860 * 255, the published pixel mean.
TRAIN_PIXEL_SUM = 3_431_114_169
TEST_PIXEL_SUM = 573_469_082

needs_debian = pytest.mark.skipif(
    not os.path.isdir(DEBIAN_DIR), reason="dataset-fashion-mnist not installed"
)


@pytest.fixture(scope="module")
def real():
    return data.load_arrays("fashion_mnist")


def write_idx(path, magic, array, cut=0, extra=b""):
    """Writes `array` as IDX (gzip if path ends in .gz), minus `cut` bytes."""
    array = np.asarray(array, np.uint8)
    header = magic.to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in array.shape
    )
    raw = header + array.tobytes() + extra
    raw = raw[: len(raw) - cut]
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(raw)
    return str(path)


def write_split(directory, prefix, n_images, n_labels, gz=True):
    ext = ".gz" if gz else ""
    rng = np.random.RandomState(0)
    write_idx(
        directory / f"{prefix}-images-idx3-ubyte{ext}",
        idx.IMAGES_MAGIC,
        rng.randint(0, 256, (n_images, 28, 28)),
    )
    write_idx(
        directory / f"{prefix}-labels-idx1-ubyte{ext}",
        idx.LABELS_MAGIC,
        rng.randint(0, 10, (n_labels,)),
    )


def assert_one_line(error, *parts):
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert str(part) in message, (part, message)


@needs_debian
def test_real_files_counts_histogram_and_checksum(real):
    (x_train, y_train), (x_test, y_test), info = real
    assert x_train.shape == (60000, 28, 28, 1) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28, 1) and x_test.dtype == np.uint8
    assert y_train.dtype == np.int32 and y_test.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    assert x_train.min() == 0 and x_train.max() == 255
    assert int(x_train.sum(dtype=np.int64)) == TRAIN_PIXEL_SUM
    assert int(x_test.sum(dtype=np.int64)) == TEST_PIXEL_SUM
    assert info == data.DatasetInfo(
        name="fashion_mnist",
        class_names=data.CLASS_NAMES,
        image_shape=(28, 28, 1),
        num_train=60000,
        num_test=10000,
        source=f"idx:{DEBIAN_DIR}",
    )
    assert info.class_names[0] == "T-shirt/top" and info.class_names[9] == "Ankle boot"


@needs_debian
def test_real_files_in_zero_one_after_pipeline(real):
    (x_train, y_train), (x_test, y_test), _ = real
    for ds in (
        data.train_dataset(x_train, y_train, 4096, epochs=1),
        data.test_dataset(x_test, y_test, 4096),
    ):
        x, y = next(iter(ds))
        assert x.dtype.name == "float32" and y.dtype.name == "int32"
        assert float(x.numpy().min()) == 0.0 and float(x.numpy().max()) == 1.0


@needs_debian
def test_local_files_never_import_tfds(monkeypatch):
    # None in sys.modules makes any `import tensorflow_datasets` fail.
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    _, _, info = data.load_arrays("fashion_mnist")
    assert info.source.startswith("idx:")


@needs_debian
def test_data_dir_accepts_uncompressed_files(tmp_path, real):
    for name in os.listdir(DEBIAN_DIR):
        with gzip.open(os.path.join(DEBIAN_DIR, name)) as src:
            with open(tmp_path / name[: -len(".gz")], "wb") as dst:
                shutil.copyfileobj(src, dst)
    (x_train, y_train), (x_test, _), info = data.load_arrays(data_dir=str(tmp_path))
    assert info.source == f"idx:{tmp_path}"
    np.testing.assert_array_equal(x_train, real[0][0])
    np.testing.assert_array_equal(y_train, real[0][1])
    np.testing.assert_array_equal(x_test, real[1][0])


@pytest.mark.parametrize("gz", [True, False])
def test_read_tiny_files(tmp_path, gz):
    ext = ".gz" if gz else ""
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    path = write_idx(tmp_path / f"i{ext}", idx.IMAGES_MAGIC, images)
    got = idx.read_images(path)
    assert got.shape == (2, 28, 28, 1) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 0], images)
    path = write_idx(tmp_path / f"l{ext}", idx.LABELS_MAGIC, [3, 7])
    np.testing.assert_array_equal(idx.read_labels(path), [3, 7])


def test_missing_file(tmp_path):
    write_split(tmp_path, "train", 3, 3)
    os.remove(tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(e, "missing", "train-labels-idx1-ubyte", str(tmp_path))


def test_missing_directory(tmp_path):
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path / "nope"))
    assert_one_line(e, "missing", "nope")


@pytest.mark.parametrize(
    "cut, extra, expected",
    [(5, b"", "truncated"), (784 * 3 - 2, b"", "truncated"), (0, b"xy", "trailing")],
)
def test_truncated_or_overlong_data(tmp_path, cut, extra, expected):
    write_split(tmp_path, "train", 3, 3)
    path = write_idx(
        tmp_path / "train-images-idx3-ubyte.gz",
        idx.IMAGES_MAGIC,
        np.zeros((3, 28, 28)),
        cut=cut,
        extra=extra,
    )
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(e, expected, path)


def test_truncated_header(tmp_path):
    path = write_idx(tmp_path / "x", idx.IMAGES_MAGIC, np.zeros((1, 28, 28)))
    with open(path, "r+b") as f:
        f.truncate(10)
    with pytest.raises(data.DataError) as e:
        idx.read_images(path)
    assert_one_line(e, "truncated", path)


def test_truncated_gzip_stream(tmp_path):
    write_split(tmp_path, "train", 3, 3)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(e, "cannot read", path)


def test_wrong_magic(tmp_path):
    write_split(tmp_path, "train", 3, 3)
    # A label file where the image file should be: magic 2049, not 2051.
    path = write_idx(
        tmp_path / "train-images-idx3-ubyte.gz", idx.LABELS_MAGIC, [1, 2, 3]
    )
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(e, "magic", "2051", "2049", path)


def test_wrong_image_shape(tmp_path):
    path = write_idx(tmp_path / "x.gz", idx.IMAGES_MAGIC, np.zeros((2, 27, 28)))
    with pytest.raises(data.DataError) as e:
        idx.read_images(path)
    assert_one_line(e, "shape", "28x28", "27x28", path)


def test_count_mismatch_between_images_and_labels(tmp_path):
    write_split(tmp_path, "train", 3, 2)
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(
        e, "mismatch", "3 images", "2 labels", "train-images", "train-labels"
    )


def test_count_differs_from_fashion_mnist(tmp_path):
    write_split(tmp_path, "train", 3, 3)
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(e, "60000", "found 3", "train-images-idx3-ubyte")


def test_label_out_of_range(tmp_path, monkeypatch):
    monkeypatch.setitem(fashion_mnist.EXPECTED_COUNTS, "train", 2)
    write_split(tmp_path, "train", 2, 2)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", idx.LABELS_MAGIC, [1, 10])
    with pytest.raises(data.DataError) as e:
        data.load_arrays(data_dir=str(tmp_path))
    assert_one_line(e, "label", "10", "train-labels-idx1-ubyte")


def test_error_is_a_value_error_folded_to_one_line():
    error = data.DataError("first line\nsecond line")
    assert isinstance(error, ValueError)
    assert str(error) == "first line second line"
