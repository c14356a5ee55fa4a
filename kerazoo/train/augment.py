"""Batch augmentation for the modern recipe: random crop after padding, flip.

Randomness is stateless and keyed by (seed, global step), so a resumed run
sees exactly the augmentations an uninterrupted run would have.
"""

import tensorflow as tf


def augment_batch(images, seed, step, pad=4):
    """Random `pad`-pixel translation (zero padding + crop) and horizontal flip.

    Args:
        images: float32 [B, H, W, C].
        seed: int run seed.
        step: int64 scalar, the global step of this batch.
        pad: pixels of zero padding before the random crop.

    Returns:
        float32 [B, H, W, C].
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], key, 0, 2 * pad + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]  # [B, H]
    cols = offsets[:, 1:] + tf.range(width)[None, :]   # [B, W]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, H, W+2p, C]
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)  # [B, H, W, C]
    flip = tf.random.stateless_uniform([batch], key + 1) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(cropped, axis=[2]), cropped)


def augment_dataset(dataset, seed, first_step):
    """Applies `augment_batch` to a dataset of (images, labels) batches."""
    steps = tf.data.Dataset.counter(start=first_step)
    return tf.data.Dataset.zip((dataset, steps)).map(
        lambda batch, step: (augment_batch(batch[0], seed, step), batch[1]),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
