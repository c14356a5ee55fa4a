"""The TFDS fallback, offline: `tfds.testing.mock_data` fakes the records.

A TFDS that is missing or fails (no network) is one DataError naming every source.
"""

import sys

import numpy as np
import pytest

from kerazoo import data
from kerazoo.data import fashion_mnist

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture
def no_local_idx(tmp_path, monkeypatch):
    # With the Debian folder "absent", load_arrays must fall through to TFDS.
    monkeypatch.setattr(fashion_mnist, "DEBIAN_IDX_DIR", str(tmp_path / "absent"))


def test_tfds_fallback(no_local_idx):
    with tfds.testing.mock_data(num_examples=12):
        (x_train, y_train), (x_test, y_test), info = data.load_arrays()
    assert info.source == "tfds"
    assert info.class_names == data.CLASS_NAMES
    assert info.image_shape == (28, 28, 1)
    assert (info.num_train, info.num_test) == (12, 12)
    assert x_train.shape == (12, 28, 28, 1) and x_train.dtype == np.uint8
    assert x_test.shape == (12, 28, 28, 1)
    assert y_train.dtype == np.int32 and y_train.shape == (12,)
    assert 0 <= y_train.min() and y_train.max() < 10


def test_tfds_fallback_through_load(no_local_idx):
    with tfds.testing.mock_data(num_examples=10):
        ds = data.load(batch_size=4, resize=32, seed=1)
    assert ds.info.source == "tfds"
    batches = list(ds.test)
    assert [x.shape for x, _ in batches] == [(4, 32, 32, 1)] * 2 + [(2, 32, 32, 1)]
    x, y = next(iter(ds.train))
    assert x.dtype.name == "float32" and y.dtype.name == "int32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0


def test_tfds_failure_is_one_data_error_naming_every_source(no_local_idx, monkeypatch):
    def no_network(*args, **kwargs):
        raise ConnectionError("Failed to reach storage.googleapis.com\nretry 3 of 3")

    monkeypatch.setattr(tfds, "load", no_network)
    with pytest.raises(data.DataError) as caught:
        data.load_arrays()
    message = str(caught.value)
    assert "\n" not in message
    for part in ("data_dir", fashion_mnist.DEBIAN_IDX_DIR, "TFDS",
                 "ConnectionError: Failed to reach storage.googleapis.com"):
        assert part in message, (part, message)
    assert "retry" not in message  # the reason's first line only


def test_tfds_missing_is_one_data_error(no_local_idx, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now fails
    with pytest.raises(data.DataError, match=r"TFDS failed: ModuleNotFoundError: .*"
                                             r"tensorflow_datasets"):
        data.load_arrays()
