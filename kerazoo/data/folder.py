"""A user's own images, one sub-folder per class, as uint8 arrays.

Layouts (`dataset="folder:PATH"`):
    PATH/<class>/*.png              split 80/20 into train/test (see below)
    PATH/train/<class>/*.png and PATH/test/<class>/*.png   used as given
Class names are the sorted sub-folder names of the training folder; label i
is `class_names[i]`. Files are read with `keras.utils.image_dataset_from_
directory` (.bmp, .gif, .jpeg, .jpg, .png, searched recursively per class).

Image size and channels come from the first image file (in sorted order):
its H x W is the size (other sizes are resized to it, bilinear), and it is
read as grayscale (C=1) if it has 1 or 2 (grey + alpha) channels, else rgb.

Without train/ and test/, `floor(0.2 * N)` images go to the test split,
chosen by a NumPy permutation with the fixed `SPLIT_SEED`: the test set must
not change with the training seed or with global TF seeds, and Keras's own
`validation_split` without shuffling would take whole classes from the end.
Fewer than 5 images leave the test split empty.
"""

import os

import numpy as np
import tensorflow as tf
import keras

from kerazoo.data.idx import DataError
from kerazoo.data.pipeline import DatasetInfo

PREFIX = "folder:"
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # As Keras.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def class_folders(root):
    """Sorted names of the class sub-folders of `root` (hidden ones skipped)."""
    return tuple(
        name
        for name in sorted(os.listdir(root))
        if os.path.isdir(os.path.join(root, name)) and not name.startswith(".")
    )


def first_image(root, class_names):
    """Path of the first image file under `root`, in Keras's reading order."""
    for name in class_names:
        for dirpath, _, files in sorted(os.walk(os.path.join(root, name))):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    return os.path.join(dirpath, f)
    raise DataError(
        f"empty folder dataset: no image files ({', '.join(IMAGE_EXTENSIONS)}) "
        f"in the class folders of {root}"
    )


def image_format(path):
    """(H, W, C, color_mode) of one image file; C is 1 or 3."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    except tf.errors.OpError as e:
        raise DataError(f"cannot decode image {path}: {e.message}") from None
    height, width, channels = image.shape
    if channels <= 2:
        return height, width, 1, "grayscale"
    return height, width, 3, "rgb"


def _read_all(root, class_names, image_size, color_mode):
    """Every image under `root`: uint8 [N, H, W, C], int32 [N], sorted order."""
    try:
        ds = keras.utils.image_dataset_from_directory(
            root,
            labels="inferred",
            label_mode="int",
            class_names=list(class_names),
            color_mode=color_mode,
            batch_size=None,
            image_size=image_size,
            shuffle=False,
            verbose=False,
        )
        xs, ys = [], []
        for x, y in ds.batch(1024).as_numpy_iterator():
            xs.append(x)
            ys.append(y)
    except (ValueError, tf.errors.OpError) as e:
        message = getattr(e, "message", str(e))
        raise DataError(f"cannot read folder dataset {root}: {message}") from None
    if not xs:
        raise DataError(f"empty folder dataset: no images read from {root}")
    # Keras yields float32; values are whole numbers unless an image was
    # resized, so rounding loses nothing for same-size images.
    x = np.clip(np.rint(np.concatenate(xs)), 0, 255).astype(np.uint8)
    return x, np.concatenate(ys).astype(np.int32)


def split_indices(num_examples):
    """(train, test) index arrays of the 80/20 split, each sorted."""
    num_test = int(num_examples * TEST_FRACTION)
    order = np.random.RandomState(SPLIT_SEED).permutation(num_examples)
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def load_folder(path):
    """Loads `path` (see the module docstring for layouts and rules).

    Args:
        path: the folder, without the "folder:" prefix.

    Returns:
        ((x_train, y_train), (x_test, y_test), info): x uint8 [N, H, W, C],
        y int32 [N], info a `DatasetInfo` named "folder:PATH".

    Raises:
        DataError: missing folder, no class folders, no images, a test
            folder whose classes differ, or an unreadable image.
    """
    if not os.path.isdir(path):
        raise DataError(f"folder dataset not found: {path!r} is not a directory")
    train_root, test_root = os.path.join(path, "train"), os.path.join(path, "test")
    presplit = os.path.isdir(train_root) and os.path.isdir(test_root)
    root = train_root if presplit else path
    class_names = class_folders(root)
    if not class_names:
        raise DataError(
            f"empty folder dataset: {root} has no class sub-folders"
        )
    height, width, channels, color_mode = image_format(first_image(root, class_names))

    def read(r):
        return _read_all(r, class_names, (height, width), color_mode)

    if presplit:
        if class_folders(test_root) != class_names:
            raise DataError(
                f"class folders differ: {train_root} has {list(class_names)}, "
                f"{test_root} has {list(class_folders(test_root))}"
            )
        train, test = read(train_root), read(test_root)
    else:
        x, y = read(root)
        train_idx, test_idx = split_indices(len(x))
        train, test = (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])
    info = DatasetInfo(
        name=PREFIX + path,
        class_names=class_names,
        image_shape=(height, width, channels),
        num_train=len(train[0]),
        num_test=len(test[0]),
        source=PREFIX + os.path.abspath(path),
    )
    return train, test, info
