"""Input pipelines: Fashion-MNIST or a folder of images, as tf.data.

Two steps, so a driver can resume exactly:
    (train, test, info) = load_arrays("fashion_mnist")   # uint8 in memory
    ds = train_dataset(*train, batch_size=256, resize=96, seed=0,
                       initial_epoch=e0, epochs=E)       # float32 [0, 1]
or, in one call, `load(...)` -> Datasets(train, test, info).

Datasets: "fashion_mnist" (see `fashion_mnist` for its sources) and
"folder:PATH" (see `folder`). Every error is a one-line `DataError`.
"""

from typing import NamedTuple

import tensorflow as tf

from kerazoo.data.fashion_mnist import CLASS_NAMES, load_fashion_mnist
from kerazoo.data.folder import load_folder
from kerazoo.data.idx import DataError
from kerazoo.data.pipeline import (
    DatasetInfo,
    check_batch_size,
    check_resize,
    epoch_order,
    preprocess_batch,
    steps_per_epoch,
    test_dataset,
    train_dataset,
)

KNOWN_DATASETS = ("fashion_mnist", "folder:PATH")


class Datasets(NamedTuple):
    """What `load` returns: endless shuffled train batches, one test pass."""

    train: tf.data.Dataset
    test: tf.data.Dataset
    info: DatasetInfo


def load_arrays(dataset="fashion_mnist", data_dir=None):
    """Loads a dataset into memory.

    Args:
        dataset: "fashion_mnist" or "folder:PATH".
        data_dir: fashion_mnist only: a folder holding its IDX files. None
            tries the Debian location, then TFDS.

    Returns:
        ((x_train, y_train), (x_test, y_test), info): x uint8 [N, H, W, C],
        y int32 [N], info a `DatasetInfo`.

    Raises:
        DataError: unknown name, data_dir given for a folder dataset, or bad
            data.
    """
    if dataset == "fashion_mnist":
        return load_fashion_mnist(data_dir)
    if isinstance(dataset, str) and dataset.startswith("folder:"):
        path = dataset[len("folder:") :]
        if not path:
            raise DataError(f"folder dataset needs a path: {dataset!r}")
        if data_dir is not None:
            raise DataError(
                f"data_dir is for fashion_mnist; {dataset!r} names its own "
                f"folder. Received: data_dir={data_dir!r}"
            )
        return load_folder(path)
    raise DataError(
        f"unknown dataset: {dataset!r}; known: {', '.join(KNOWN_DATASETS)}"
    )


def load(dataset="fashion_mnist", data_dir=None, batch_size=256, resize=None, seed=0):
    """Loads a dataset and builds both pipelines.

    The train pipeline starts at epoch 0 and repeats forever; pass
    `steps_per_epoch(info.num_train, batch_size)` to Keras `fit`. To resume
    at a later epoch, call `train_dataset` with `initial_epoch` instead.

    Returns:
        `Datasets(train, test, info)`.
    """
    # Checked before loading, so a typo fails in milliseconds.
    check_batch_size(batch_size)
    check_resize(resize)
    (x_train, y_train), (x_test, y_test), info = load_arrays(dataset, data_dir)
    train = train_dataset(x_train, y_train, batch_size, resize=resize, seed=seed)
    test = test_dataset(x_test, y_test, batch_size, resize=resize)
    return Datasets(train, test, info)


__all__ = [
    "CLASS_NAMES",
    "DataError",
    "DatasetInfo",
    "Datasets",
    "epoch_order",
    "load",
    "load_arrays",
    "preprocess_batch",
    "steps_per_epoch",
    "test_dataset",
    "train_dataset",
]
