"""tf.data pipeline: scaling, resize, stateless shuffling, resume, errors.

Labels are set to arange(N), so the labels of a batch are the indices of the
examples in it and reveal the order the pipeline chose.
"""

import numpy as np
import pytest
import tensorflow as tf

from kerazoo import data

N, B = 10, 4  # 10 examples in batches of 4: 3 steps, the last one of 2.


def make_arrays(n=N, h=3, w=5, c=2):
    images = (np.arange(n * h * w * c) * 7 % 256).astype(np.uint8)
    return images.reshape(n, h, w, c), np.arange(n, dtype=np.int32)


def epoch_batches(ds, epochs, steps):
    """Labels of `epochs` epochs of `steps` batches: one list per epoch."""
    labels = [y.numpy() for _, y in ds.take(epochs * steps)]
    return [labels[e * steps : (e + 1) * steps] for e in range(epochs)]


def assert_one_line(error, *parts):
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert str(part) in message, (part, message)


def test_steps_per_epoch_counts_the_partial_batch():
    assert data.steps_per_epoch(N, B) == 3
    assert data.steps_per_epoch(60000, 256) == 235
    assert data.steps_per_epoch(8, 4) == 2


def test_preprocess_scales_eagerly():
    x = tf.constant([[[[0], [51]], [[255], [128]]]], tf.uint8)  # [1, 2, 2, 1]
    got = data.preprocess_batch(x)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), x.numpy() / 255.0, rtol=1e-6)


def test_preprocess_resize_matches_bilinear_reference():
    # Rows [0, 255] upsampled to 4 with half-pixel centres sample the source
    # at x = -0.25, 0.25, 0.75, 1.25 (clamped): weights 0, .25, .75, 1.
    x = tf.constant([[0, 255], [0, 255]], tf.uint8)[None, :, :, None]
    got = data.preprocess_batch(x, resize=4)
    assert got.shape == (1, 4, 4, 1)
    expected = np.tile([0.0, 0.25, 0.75, 1.0], (4, 1))[None, :, :, None]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)  # float32 ulps


def test_resize_eager_and_in_tf_data_agree():
    images, labels = make_arrays()
    ds = data.test_dataset(images, labels, B, resize=7)
    batches = [x.numpy() for x, _ in ds]
    assert [b.shape for b in batches] == [(4, 7, 7, 2), (4, 7, 7, 2), (2, 7, 7, 2)]
    eager = data.preprocess_batch(tf.constant(images), resize=7).numpy()
    # Resizing is per image, so the batch it came in does not matter.
    np.testing.assert_allclose(np.concatenate(batches), eager, atol=1e-6)
    assert np.concatenate(batches).min() >= 0.0 and eager.max() <= 1.0


def test_test_split_is_unshuffled_and_exact():
    images, labels = make_arrays()
    ds = data.test_dataset(images, labels, B)
    assert len(ds) == 3
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    np.testing.assert_array_equal(np.concatenate(ys), labels)
    np.testing.assert_allclose(np.concatenate(xs), images / 255.0, rtol=1e-6)
    assert ys[0].dtype == np.int32


def test_shuffle_order_matches_eager_epoch_order():
    images, labels = make_arrays()
    ds = data.train_dataset(images, labels, B, seed=5, epochs=3)
    assert len(ds) == 9  # 3 epochs * 3 steps, known to Keras.
    for e, batches in enumerate(epoch_batches(ds, 3, 3)):
        assert [len(b) for b in batches] == [4, 4, 2]
        order = data.epoch_order(N, 5, e).numpy()
        np.testing.assert_array_equal(np.concatenate(batches), order)
    # Images travel with their labels.
    for x, y in ds.take(1):
        np.testing.assert_allclose(x.numpy(), images[y.numpy()] / 255.0, rtol=1e-6)


def test_every_example_once_per_epoch_and_epochs_differ():
    images, labels = make_arrays(n=50)
    ds = data.train_dataset(images, labels, 8, seed=0, epochs=2)
    first, second = [np.concatenate(b) for b in epoch_batches(ds, 2, 7)]
    np.testing.assert_array_equal(np.sort(first), labels)
    np.testing.assert_array_equal(np.sort(second), labels)
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, labels)  # Shuffled at all.


def test_same_seed_same_order_regardless_of_prior_iteration():
    images, labels = make_arrays(n=50)
    ds = data.train_dataset(images, labels, 8, seed=3, epochs=1)
    once = np.concatenate([y.numpy() for _, y in ds])
    again = np.concatenate([y.numpy() for _, y in ds])  # Re-iterated.
    fresh = data.train_dataset(images, labels, 8, seed=3, epochs=1)
    other = data.train_dataset(images, labels, 8, seed=4, epochs=1)
    np.testing.assert_array_equal(once, again)
    np.testing.assert_array_equal(once, np.concatenate([y for _, y in fresh]))
    assert not np.array_equal(once, np.concatenate([y for _, y in other]))


def test_resume_at_epoch_2_repeats_the_uninterrupted_run():
    images, labels = make_arrays()
    full = data.train_dataset(images, labels, B, seed=9, epochs=4)
    resumed = data.train_dataset(images, labels, B, seed=9, initial_epoch=2, epochs=4)
    full_epochs = epoch_batches(full, 4, 3)
    resumed_epochs = epoch_batches(resumed, 2, 3)
    assert len(resumed) == 6
    for want, got in zip(full_epochs[2:], resumed_epochs):
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
    # An endless run agrees too, and images match as well as labels.
    endless = data.train_dataset(images, labels, B, seed=9, initial_epoch=2)
    for (xa, ya), (xb, yb) in zip(resumed, endless.take(6)):
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
    assert endless.cardinality() == tf.data.INFINITE_CARDINALITY


def test_train_batches_are_resized_and_typed():
    images, labels = make_arrays()
    ds = data.train_dataset(images, labels, B, resize=6, epochs=1)
    assert ds.element_spec[0].shape.as_list() == [None, 6, 6, 2]
    x, y = next(iter(ds))
    assert x.shape == (4, 6, 6, 2) and x.dtype == tf.float32 and y.dtype == tf.int32


@pytest.mark.parametrize("value", [0, -1, 2.0, True, None, "8"])
def test_bad_batch_size(value):
    images, labels = make_arrays()
    for build in (
        lambda: data.train_dataset(images, labels, value),
        lambda: data.test_dataset(images, labels, value),
        lambda: data.load("fashion_mnist", batch_size=value),
    ):
        with pytest.raises(data.DataError) as e:
            build()
        assert_one_line(e, "batch_size", repr(value))


@pytest.mark.parametrize("value", [0, -96, 96.0, False])
def test_bad_resize(value):
    images, labels = make_arrays()
    for build in (
        lambda: data.train_dataset(images, labels, B, resize=value),
        lambda: data.test_dataset(images, labels, B, resize=value),
        lambda: data.preprocess_batch(images, resize=value),
        lambda: data.load("fashion_mnist", resize=value),
    ):
        with pytest.raises(data.DataError) as e:
            build()
        assert_one_line(e, "resize", repr(value))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"initial_epoch": -1}, "initial_epoch"),
        ({"initial_epoch": 3, "epochs": 2}, "epochs"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_epoch_arguments(kwargs, name):
    images, labels = make_arrays()
    with pytest.raises(data.DataError) as e:
        data.train_dataset(images, labels, B, **kwargs)
    assert_one_line(e, name, repr(kwargs[name]))


def test_bad_arrays():
    images, labels = make_arrays()
    with pytest.raises(data.DataError) as e:
        data.train_dataset(images.astype(np.float32), labels, B)
    assert_one_line(e, "uint8", "float32")
    with pytest.raises(data.DataError) as e:
        data.test_dataset(images, labels[:-1], B)
    assert_one_line(e, "labels", "(9,)")


@pytest.mark.parametrize("name", ["foo", "mnist", "folder:"])
def test_unknown_dataset(name):
    with pytest.raises(data.DataError) as e:
        data.load_arrays(name)
    assert_one_line(e, repr(name))
    if name != "folder:":
        assert str(e.value) == (
            f"unknown dataset: {name!r}; known: fashion_mnist, folder:PATH"
        )
