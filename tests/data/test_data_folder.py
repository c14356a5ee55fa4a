"""`folder:PATH` datasets on tiny PNG files written by the tests."""

import os

import numpy as np
import pytest
import tensorflow as tf

from kerazoo import data


def write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(np.asarray(array, np.uint8)))


def write_classes(root, classes, per_class, shape, start=0):
    """Image k of class i is filled with the value 10 * i + k + start."""
    for i, name in enumerate(classes):
        for k in range(per_class):
            value = 10 * i + k + start
            write_png(f"{root}/{name}/img{k}.png", np.full(shape, value))


def assert_one_line(error, *parts):
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert str(part) in message, (part, message)


def test_grey_folder_is_split_80_20(tmp_path):
    write_classes(str(tmp_path), ["cat", "ant", "bee"], 4, (5, 7, 1))
    train, test, info = data.load_arrays(f"folder:{tmp_path}")
    assert info.name == f"folder:{tmp_path}"
    assert info.source == f"folder:{tmp_path}"
    assert info.class_names == ("ant", "bee", "cat")  # Sorted, as Keras.
    assert info.image_shape == (5, 7, 1)
    assert (info.num_train, info.num_test) == (10, 2)  # floor(0.2 * 12) = 2.
    x = np.concatenate([train[0], test[0]])
    y = np.concatenate([train[1], test[1]])
    assert x.dtype == np.uint8 and x.shape[1:] == (5, 7, 1) and y.dtype == np.int32
    # Every image exactly once, with the label of its folder.
    pairs = sorted((int(img[0, 0, 0]), int(label)) for img, label in zip(x, y))
    expected = sorted(
        (10 * i + k, info.class_names.index(name))
        for i, name in enumerate(["cat", "ant", "bee"])
        for k in range(4)
    )
    assert pairs == expected
    assert all((img == img[0, 0, 0]).all() for img in x)  # Pixels unchanged.
    # The split is fixed: a second load gives the same arrays.
    again = data.load_arrays(f"folder:{tmp_path}")
    np.testing.assert_array_equal(again[1][0], test[0])


def test_rgb_folder_with_train_and_test(tmp_path):
    write_classes(f"{tmp_path}/train", ["dog", "cow"], 3, (6, 6, 3))
    write_classes(f"{tmp_path}/test", ["dog", "cow"], 2, (6, 6, 3), start=100)
    ds = data.load(f"folder:{tmp_path}", batch_size=3, resize=8, seed=2)
    info = ds.info
    assert info.class_names == ("cow", "dog")
    assert info.image_shape == (6, 6, 3)
    assert (info.num_train, info.num_test) == (6, 4)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds.test])
    assert [x.shape for x in xs] == [(3, 8, 8, 3), (1, 8, 8, 3)]
    # Test split in sorted order: cow/img0, cow/img1, dog/img0, dog/img1;
    # cow was written as class 1 (values 110+k), dog as class 0 (100+k).
    np.testing.assert_array_equal(np.concatenate(ys), [0, 0, 1, 1])
    firsts = np.concatenate(xs)[:, 0, 0, 0] * 255
    np.testing.assert_allclose(firsts, [110, 111, 100, 101], atol=1e-3)
    x, y = next(iter(ds.train))
    assert x.shape == (3, 8, 8, 3) and y.dtype == tf.int32


def test_grey_detected_from_first_image(tmp_path):
    # The first file (class "a") is grey, so the folder reads as grayscale.
    write_png(f"{tmp_path}/a/0.png", np.zeros((4, 4, 1)))
    write_png(f"{tmp_path}/b/0.png", np.full((4, 4, 3), 90))
    train, test, info = data.load_arrays(f"folder:{tmp_path}")
    assert info.image_shape == (4, 4, 1) and train[0].shape == (2, 4, 4, 1)
    assert info.num_test == 0  # Fewer than 5 images: no test split.


def test_empty_folder(tmp_path):
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    with pytest.raises(data.DataError) as e:
        data.load_arrays(f"folder:{tmp_path}")
    assert_one_line(e, "empty", str(tmp_path))


def test_folder_without_class_folders(tmp_path):
    write_png(f"{tmp_path}/x.png", np.zeros((4, 4, 1)))
    with pytest.raises(data.DataError) as e:
        data.load_arrays(f"folder:{tmp_path}")
    assert_one_line(e, "no class sub-folders", str(tmp_path))


def test_missing_folder(tmp_path):
    with pytest.raises(data.DataError) as e:
        data.load_arrays(f"folder:{tmp_path}/nope")
    assert_one_line(e, "not found", "nope")


def test_test_classes_must_match(tmp_path):
    write_classes(f"{tmp_path}/train", ["a", "b"], 1, (4, 4, 1))
    write_classes(f"{tmp_path}/test", ["a", "c"], 1, (4, 4, 1))
    with pytest.raises(data.DataError) as e:
        data.load_arrays(f"folder:{tmp_path}")
    assert_one_line(e, "class folders differ", "'c'")


def test_undecodable_image(tmp_path):
    os.makedirs(tmp_path / "a")
    (tmp_path / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(data.DataError) as e:
        data.load_arrays(f"folder:{tmp_path}")
    assert_one_line(e, "cannot decode", "bad.png")


def test_data_dir_is_rejected(tmp_path):
    with pytest.raises(data.DataError) as e:
        data.load_arrays(f"folder:{tmp_path}", data_dir="/tmp/x")
    assert_one_line(e, "data_dir", "'/tmp/x'")
