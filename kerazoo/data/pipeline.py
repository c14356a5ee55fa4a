"""From in-memory uint8 arrays to batched, shuffled tf.data pipelines.

The whole dataset stays in memory as uint8 tensors (Fashion-MNIST train is
60000*28*28 = 47 MB); that is the cache, so no `.cache()` of float or resized
images (which would be 4x, or at 96x96 47x, larger). Each step gathers a
batch of indices from those tensors, then scales and resizes the batch
(resizing once per batch is much faster than once per example).

Shuffling is stateless: the order of epoch `e` is
`stateless_shuffle(range(N), seed=[seed, e])`, a function of (seed, e) only,
so a run resumed at `initial_epoch` sees exactly the batches the
uninterrupted run would have seen, whatever was iterated before.

The captured arrays are constants in the tf.data graph, which protobuf caps
at 2 GB; fine for Fashion-MNIST and small image folders.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from kerazoo.data.idx import DataError


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a loader knows about its dataset.

    Attributes:
        name: "fashion_mnist" or "folder:PATH", as passed to `load_arrays`.
        class_names: one name per label, label i is `class_names[i]`.
        image_shape: native (H, W, C) of the stored images, before any resize.
        num_train: number of training examples.
        num_test: number of test examples.
        source: where the arrays came from: "idx:DIR", "tfds" or "folder:DIR".
    """

    name: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    num_train: int
    num_test: int
    source: str

    @property
    def num_classes(self):
        return len(self.class_names)


def _is_int(value):
    # bool is an int subclass, but batch_size=True is a bug, not 1.
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_batch_size(batch_size):
    """Raises DataError unless `batch_size` is an int >= 1."""
    if not _is_int(batch_size) or batch_size < 1:
        raise DataError(
            "batch_size must be an int >= 1. "
            f"Received: batch_size={batch_size!r}"
        )


def check_resize(resize):
    """Raises DataError unless `resize` is None or an int >= 1."""
    if resize is not None and (not _is_int(resize) or resize < 1):
        raise DataError(
            "resize must be None or an int >= 1. "
            f"Received: resize={resize!r}"
        )


def steps_per_epoch(num_examples, batch_size):
    """Batches per epoch, counting the last partial batch: ceil(N / B)."""
    check_batch_size(batch_size)
    return math.ceil(num_examples / batch_size)


def preprocess_batch(images, resize=None):
    """Scales a uint8 batch to float32 [0, 1] and optionally resizes it.

    Args:
        images: uint8 [B, H, W, C].
        resize: None, or the side S of the square output (bilinear,
            `tf.image.resize` without antialiasing, so values stay in [0, 1]).

    Returns:
        float32 [B, H, W, C], or [B, S, S, C] when resized.
    """
    check_resize(resize)
    x = tf.cast(images, tf.float32) / 255.0
    if resize is not None:
        x = tf.image.resize(x, (resize, resize), method="bilinear")
    return x


def epoch_order(num_examples, seed, epoch):
    """The example order of one epoch: a permutation of range(N), int64 [N].

    Depends only on (seed, epoch); works on Python ints and on tensors (the
    epoch is a tensor inside the pipeline).
    """
    indices = tf.range(num_examples, dtype=tf.int64)
    seed_pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(indices, seed=seed_pair)


def _as_tensors(images, labels):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            "images must be uint8 [N, H, W, C]. "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"labels must be [N] with N={len(images)} (the image count). "
            f"Received: shape={labels.shape}"
        )
    # tf.data runs on the host; keep the arrays there rather than on a GPU.
    with tf.device("/cpu:0"):
        return tf.constant(images), tf.constant(labels.astype(np.int32))


def _batches(indices, images, labels, batch_size, resize):
    """Index dataset ([K] int64 elements) -> (float32 images, int32 labels)."""

    def gather(idx):  # idx: [B] int64
        x = tf.gather(images, idx)  # [B, H, W, C] uint8
        return preprocess_batch(x, resize), tf.gather(labels, idx)

    # deterministic=True keeps batch order fixed despite parallel map calls.
    return indices.map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(tf.data.AUTOTUNE)


def train_dataset(
    images,
    labels,
    batch_size,
    *,
    resize=None,
    seed=0,
    initial_epoch=0,
    epochs=None,
    steps_per_epoch=None,
):
    """Training batches of epochs initial_epoch .. epochs-1, concatenated.

    Each epoch visits every example exactly once, in the order
    `epoch_order(N, seed, e)`, as `steps_per_epoch(N, batch_size)` batches;
    the last one is partial when B does not divide N. Give Keras `fit` the
    same `initial_epoch`, `epochs` and `steps_per_epoch`.

    Args:
        images: uint8 [N, H, W, C].
        labels: int [N].
        batch_size: examples per batch, >= 1.
        resize: None or output side S (see `preprocess_batch`).
        seed: int; with the epoch number, fixes each epoch's order.
        initial_epoch: first epoch to yield (0-based), as in Keras `fit`.
        epochs: end epoch, exclusive; None repeats forever.
        steps_per_epoch: optional cap on the batches of each epoch (short
            runs): epoch e still starts at the head of its own order.

    Returns:
        Dataset of (float32 [B, H', W', C] in [0, 1], int32 [B]).
    """
    check_batch_size(batch_size)
    check_resize(resize)
    if not _is_int(seed):
        raise DataError(f"seed must be an int. Received: seed={seed!r}")
    if not _is_int(initial_epoch) or initial_epoch < 0:
        raise DataError(
            "initial_epoch must be an int >= 0. "
            f"Received: initial_epoch={initial_epoch!r}"
        )
    if epochs is not None and (not _is_int(epochs) or epochs < initial_epoch):
        raise DataError(
            f"epochs must be None or an int >= initial_epoch={initial_epoch}. "
            f"Received: epochs={epochs!r}"
        )
    images, labels = _as_tensors(images, labels)
    n = int(images.shape[0])
    steps = -(-n // batch_size)  # ceil(N / B), as steps_per_epoch(); that name is an argument here
    if steps_per_epoch is not None:
        if not _is_int(steps_per_epoch) or steps_per_epoch < 1:
            raise DataError(
                "steps_per_epoch must be None or an int >= 1. "
                f"Received: steps_per_epoch={steps_per_epoch!r}"
            )
        steps = min(steps, steps_per_epoch)
    if epochs is None:
        epoch_ids = tf.data.Dataset.counter(start=initial_epoch)
        cardinality = tf.data.INFINITE_CARDINALITY
    else:
        epoch_ids = tf.data.Dataset.range(initial_epoch, epochs)
        cardinality = (epochs - initial_epoch) * steps

    def one_epoch(epoch):
        order = epoch_order(n, seed, epoch)  # [N] int64
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).take(steps)

    indices = epoch_ids.flat_map(one_epoch)
    # flat_map forgets the length; restore it so len() and Keras see it.
    indices = indices.apply(tf.data.experimental.assert_cardinality(cardinality))
    return _batches(indices, images, labels, batch_size, resize)


def test_dataset(images, labels, batch_size, *, resize=None):
    """Test batches in stored order (unshuffled), last batch partial.

    Args and returns as `train_dataset`; one pass over the data.
    """
    check_batch_size(batch_size)
    check_resize(resize)
    images, labels = _as_tensors(images, labels)
    n = int(images.shape[0])
    indices = tf.data.Dataset.range(n).batch(batch_size)
    return _batches(indices, images, labels, batch_size, resize)


# The name starts with "test"; stop pytest collecting it where it is imported.
test_dataset.__test__ = False
