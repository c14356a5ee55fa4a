"""Fashion-MNIST as uint8 arrays, from local IDX files or TensorFlow Datasets.

Sources, first match wins:
  1. `data_dir`, when given: a folder holding the four upstream IDX files.
  2. `DEBIAN_IDX_DIR` (Debian package dataset-fashion-mnist), if it exists.
  3. `tfds.load("fashion_mnist")`, which may download. TFDS is imported only
     here, so local files never touch the network.
A folder from 1 or 2 that is incomplete or corrupt raises `DataError` rather
than falling through to a download that would hide the problem.
"""

import os

import numpy as np

from kerazoo.data import idx
from kerazoo.data.idx import DataError
from kerazoo.data.pipeline import DatasetInfo

NAME = "fashion_mnist"
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SHAPE = (28, 28, 1)
NUM_TRAIN = 60_000
NUM_TEST = 10_000

# A module constant so tests (and odd installs) can point it elsewhere.
DEBIAN_IDX_DIR = "/usr/share/datasets/fashion-mnist"

# split -> (images file, labels file), upstream names without ".gz".
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EXPECTED_COUNTS = {"train": NUM_TRAIN, "test": NUM_TEST}


def load_fashion_mnist(data_dir=None):
    """Loads Fashion-MNIST from the first available source (module docstring).

    Args:
        data_dir: None, or a folder with the IDX files (gzip or plain).

    Returns:
        ((x_train, y_train), (x_test, y_test), info): x uint8
        [N, 28, 28, 1], y int32 [N] in 0..9, info a `DatasetInfo`.

    Raises:
        DataError: a local IDX file is missing, truncated or inconsistent, or
            no local files and TFDS fails.
    """
    if data_dir is not None:
        return load_idx(data_dir)
    if os.path.isdir(DEBIAN_IDX_DIR):
        return load_idx(DEBIAN_IDX_DIR)
    return load_tfds()


def _read_split(directory, split):
    images_name, labels_name = IDX_FILES[split]
    images_path = idx.find_idx_file(directory, images_name)
    labels_path = idx.find_idx_file(directory, labels_name)
    x = idx.read_images(images_path, *IMAGE_SHAPE[:2])
    y = idx.read_labels(labels_path)
    if len(x) != len(y):
        raise DataError(
            f"count mismatch: {images_path} has {len(x)} images but "
            f"{labels_path} has {len(y)} labels"
        )
    if len(x) != EXPECTED_COUNTS[split]:
        raise DataError(
            f"wrong count in {images_path}: Fashion-MNIST {split} has "
            f"{EXPECTED_COUNTS[split]} examples, found {len(x)}"
        )
    if y.size and y.max() >= len(CLASS_NAMES):
        raise DataError(
            f"bad label in {labels_path}: {y.max()} is not in "
            f"0..{len(CLASS_NAMES) - 1}"
        )
    return x, y


def load_idx(directory):
    """Reads the four IDX files in `directory`; returns as `load_fashion_mnist`."""
    train = _read_split(directory, "train")
    test = _read_split(directory, "test")
    return train, test, _info(train, test, source=f"idx:{directory}")


def _info(train, test, source):
    """DatasetInfo of Fashion-MNIST splits `(x, y)` read from `source`."""
    return DatasetInfo(name=NAME, class_names=CLASS_NAMES, image_shape=IMAGE_SHAPE,
                       num_train=len(train[0]), num_test=len(test[0]), source=source)


def _tfds_split_to_numpy(ds):
    # Chunks of 10000 rather than tfds.load(batch_size=-1), which needs the
    # split sizes from metadata (absent under tfds.testing.mock_data).
    xs, ys = [], []
    for x, y in ds.batch(10_000).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        return (
            np.zeros((0,) + IMAGE_SHAPE, np.uint8),
            np.zeros((0,), np.int32),
        )
    return np.concatenate(xs).astype(np.uint8), np.concatenate(ys).astype(np.int32)


def load_tfds():
    """Loads Fashion-MNIST with `tfds.load`; returns as `load_fashion_mnist`.

    Raises:
        DataError: TFDS is missing, or cannot download or read the data; the
            one line names every source tried and TFDS's reason.
    """
    try:
        import tensorflow_datasets as tfds  # Deferred: only this source needs it.

        train_ds, test_ds = tfds.load(NAME, split=["train", "test"], as_supervised=True)
        train = _tfds_split_to_numpy(train_ds)  # reading may download or fail too
        test = _tfds_split_to_numpy(test_ds)
    except Exception as e:  # noqa: BLE001 -- TFDS raises many kinds; each is "no data"
        raise DataError(f"no Fashion-MNIST data: no data_dir given, no Debian folder "
                        f"{DEBIAN_IDX_DIR} (apt-get install dataset-fashion-mnist), and "
                        f"TFDS failed: {_reason(e)}") from e
    for split, (x, _) in (("train", train), ("test", test)):
        if x.shape[1:] != IMAGE_SHAPE:
            raise DataError(
                f"tfds fashion_mnist {split} images have shape {x.shape[1:]}, "
                f"expected {IMAGE_SHAPE}"
            )
    info = _info(train, test, source="tfds")
    return train, test, info


def _reason(error, limit=300):
    """`Type: first line of the message`, cut to `limit` characters (TFDS's are long)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return reason if len(reason) <= limit else reason[:limit - 3] + "..."
